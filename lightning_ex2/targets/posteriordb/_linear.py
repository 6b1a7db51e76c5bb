"""Shared code of the normal linear regressions among the posteriordb ports.

Stan programs of the form ``y ~ normal(X * beta, sigma)`` with ``vector[K] beta`` and
``real<lower=0> sigma`` (in that order), where ``X`` is built in ``transformed data``
(an intercept column, centred or log-transformed predictors, interactions).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from torch import Tensor

from .base import Lower, Param, PosteriorDBTarget


class NormalRegression(PosteriorDBTarget):
    """``y ~ normal(X beta, sigma)``; parameters ``beta [K]`` and ``sigma > 0``.

    Subclasses write :meth:`design` (Stan's ``transformed data``: the response and
    the ``[N, K]`` design matrix from posteriordb's data) and, where the program has
    priors, :meth:`log_prior`; none means Stan's implicit flat priors. The
    likelihood is ``-N log sigma - |y - X beta|^2 / (2 sigma^2)`` (``~`` drops
    ``-N/2 log 2 pi``), the residual formed directly rather than from
    ``X'X`` (no cancellation in float32).
    """

    def design(self, data: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """``(y [N], X [N, K])`` from posteriordb's data."""
        raise NotImplementedError

    def declare(self, data: Mapping[str, Any]) -> tuple[Param, ...]:
        _, x = self.design(data)
        return (Param("beta", (x.shape[1],)), Param("sigma", (), Lower(0.0)))

    def setup(self, data: Mapping[str, Any]) -> None:
        y, x = self.design(data)
        self.tensor("y", y)
        self.tensor("X", x)

    def log_prior(self, p: dict[str, Tensor]) -> Tensor | float:
        """Log prior density up to a constant (flat by default)."""
        return 0.0

    def log_density(self, p: dict[str, Tensor]) -> Tensor:
        beta, sigma = p["beta"], p["sigma"]
        resid = self.y - beta @ self.X.T  # [..., N]
        n = self.y.shape[-1]
        like = -n * sigma.log() - 0.5 * resid.square().sum(-1) / sigma.square()
        return like + self.log_prior(p)


def columns(*cols: Any) -> np.ndarray:
    """``[N, K]`` float64 design matrix from ``K`` columns (scalars broadcast: ``1.0``
    is the intercept)."""
    arrays = [np.asarray(c, dtype=np.float64) for c in cols]
    n = max(a.size for a in arrays)
    return np.stack([np.broadcast_to(a, (n,)) for a in arrays], axis=1)
