"""posteriordb ``earnings-logearn_interaction_z``: log earnings on standardised height,
sex and their interaction (5 parameters).

Stan program ``logearn_interaction_z``: ``z_height = (height - mean(height)) /
sd(height)`` (Stan's ``sd`` is the sample standard deviation, divisor ``N - 1``),
``log(earn) ~ normal(beta[1] + beta[2] z_height + beta[3] male + beta[4] z_height male,
sigma)``; flat priors.
"""

from __future__ import annotations

import numpy as np

from . import register
from ._linear import NormalRegression, columns


@register
class LogearnInteractionZ(NormalRegression):
    """Log-earnings regression (posteriordb ``earnings-logearn_interaction_z``);
    ``x = (beta[1..4], log sigma)``."""

    name = "earnings-logearn_interaction_z"

    def design(self, data):  # type: ignore[no-untyped-def]
        height = np.asarray(data["height"], dtype=np.float64)
        male = np.asarray(data["male"], dtype=np.float64)
        z = (height - height.mean()) / height.std(ddof=1)
        y = np.log(np.asarray(data["earn"], dtype=np.float64))
        return y, columns(1.0, z, male, z * male)
