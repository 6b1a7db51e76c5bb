"""posteriordb ``kidiq_with_mom_work-kidscore_interaction_c``: child's test score on the
mother's high-school completion and IQ, both centred, with their interaction
(5 parameters).

Stan program ``kidscore_interaction_c``: ``c_mom_hs = mom_hs - mean(mom_hs)``,
``c_mom_iq = mom_iq - mean(mom_iq)`` (``transformed data``), ``kid_score ~
normal(beta[1] + beta[2] c_mom_hs + beta[3] c_mom_iq + beta[4] c_mom_hs c_mom_iq,
sigma)``; flat priors.
"""

from __future__ import annotations

import numpy as np

from . import register
from ._linear import NormalRegression, columns


@register
class KidscoreInteractionC(NormalRegression):
    """Centred interaction regression (posteriordb
    ``kidiq_with_mom_work-kidscore_interaction_c``); ``x = (beta[1..4], log sigma)``."""

    name = "kidiq_with_mom_work-kidscore_interaction_c"

    def design(self, data):  # type: ignore[no-untyped-def]
        hs = np.asarray(data["mom_hs"], dtype=np.float64)
        iq = np.asarray(data["mom_iq"], dtype=np.float64)
        hs, iq = hs - hs.mean(), iq - iq.mean()
        return np.asarray(data["kid_score"], dtype=np.float64), columns(1.0, hs, iq, hs * iq)
