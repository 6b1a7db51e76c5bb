"""posteriordb ``mesquite-logmesquite_logvash``: log weight of mesquite bushes on log
canopy volume, area, shape, total height and group (7 parameters).

Stan program ``logmesquite_logvash``: from ``transformed data``, ``log(weight) ~
normal(beta[1] + beta[2] log(diam1 diam2 canopy_height) + beta[3] log(diam1 diam2)
+ beta[4] log(diam1 / diam2) + beta[5] log(total_height) + beta[6] group, sigma)``;
flat priors. Volume, area and shape are strongly correlated predictors.
"""

from __future__ import annotations

import numpy as np

from . import register
from ._linear import NormalRegression, columns


@register
class LogmesquiteLogvash(NormalRegression):
    """Log-log regression (posteriordb ``mesquite-logmesquite_logvash``);
    ``x = (beta[1..6], log sigma)``."""

    name = "mesquite-logmesquite_logvash"

    def design(self, data):  # type: ignore[no-untyped-def]
        d1, d2, ch, th = (
            np.asarray(data[k], dtype=np.float64)
            for k in ("diam1", "diam2", "canopy_height", "total_height")
        )
        x = columns(
            1.0, np.log(d1 * d2 * ch), np.log(d1 * d2), np.log(d1 / d2), np.log(th), data["group"]
        )
        return np.log(np.asarray(data["weight"], dtype=np.float64)), x
