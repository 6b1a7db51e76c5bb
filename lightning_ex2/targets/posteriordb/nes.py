"""posteriordb ``nes2000-nes``: party identification from the 2000 National Election
Study, a normal linear regression on 8 predictors (10 parameters).

Stan program ``nes``: ``partyid7 ~ normal(beta[1] + beta[2] real_ideo + beta[3] race_adj
+ beta[4..6] age-group indicators + beta[7] educ1 + beta[8] gender + beta[9] income,
sigma)``, the age indicators built in ``transformed data`` from ``age_discrete``
(2: 30-44, 3: 45-64, 4: 65+); flat priors. The other years' posteriors
(``nes1972-nes`` ... ``nes1996-nes``) share the program: a subclass with another
``name`` ports them.
"""

from __future__ import annotations

import numpy as np

from . import register
from ._linear import NormalRegression, columns


@register
class Nes(NormalRegression):
    """Normal regression of ``partyid7`` (posteriordb ``nes2000-nes``); ``x = (beta[1..9],
    log sigma)``."""

    name = "nes2000-nes"

    def design(self, data):  # type: ignore[no-untyped-def]
        age = np.asarray(data["age_discrete"])
        x = columns(
            1.0,
            data["real_ideo"],
            data["race_adj"],
            age == 2,
            age == 3,
            age == 4,
            data["educ1"],
            data["gender"],
            data["income"],
        )
        return np.asarray(data["partyid7"], dtype=np.float64), x
