"""posteriordb ``sblrc-blr``: Bayesian linear regression with 5 correlated predictors
(6 parameters).

Stan program ``blr``: ``beta ~ normal(0, 10)``, ``sigma ~ normal(0, 10)`` on
``sigma > 0`` (the half-normal's truncation is a constant), ``y ~ normal(X beta,
sigma)``, all by ``target +=`` (constants kept by Stan, dropped here: equal up to a
constant). ``sblri-blr`` is the same program on other data.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from . import register
from ._linear import NormalRegression


@register
class Blr(NormalRegression):
    """Bayesian linear regression (posteriordb ``sblrc-blr``); ``x = (beta[1..5], log sigma)``."""

    name = "sblrc-blr"

    def design(self, data):  # type: ignore[no-untyped-def]
        x = np.asarray(data["X"], dtype=np.float64).reshape(data["N"], data["D"])
        return np.asarray(data["y"], dtype=np.float64), x

    def log_prior(self, p: dict[str, Tensor]) -> Tensor:
        return -(p["beta"].square().sum(-1) + p["sigma"].square()) / 200.0
