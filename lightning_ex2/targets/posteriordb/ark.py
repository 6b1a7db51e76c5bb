"""posteriordb ``arK-arK``: an autoregressive AR(K) model of a time series (K + 2 parameters).

Stan program ``arK``: ``y_t ~ N(alpha + sum_k beta_k y_{t-k}, sigma)`` for
``t = K+1..T``, ``alpha, beta_k ~ N(0, 10)``, ``sigma ~ Cauchy+(0, 2.5)``.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from . import register
from .base import Lower, Param, PosteriorDBTarget


@register
class ArK(PosteriorDBTarget):
    """AR(K) (posteriordb ``arK-arK``); ``x = (alpha, beta[1..K], log sigma)``."""

    name = "arK-arK"

    def declare(self, data):  # type: ignore[no-untyped-def]
        return (Param("alpha"), Param("beta", (int(data["K"]),)), Param("sigma", (), Lower(0.0)))

    def setup(self, data) -> None:  # type: ignore[no-untyped-def]
        k, y = int(data["K"]), np.asarray(data["y"], dtype=np.float64)
        t = len(y)
        # lags[t, k] = y[t - k - 1] for the modelled steps t = K..T-1 (0-based)
        lags = np.stack([y[k - j - 1 : t - j - 1] for j in range(k)], axis=-1)
        self.tensor("lags", lags)
        self.tensor("y_now", y[k:])

    def log_density(self, p: dict[str, Tensor]) -> Tensor:
        alpha, beta, sigma = p["alpha"], p["beta"], p["sigma"]
        mean = alpha.unsqueeze(-1) + beta @ self.lags.T  # [..., T-K]
        resid = (self.y_now - mean) / sigma.unsqueeze(-1)
        n = self.y_now.shape[-1]
        return (
            -0.5 * (alpha / 10).square()
            - 0.5 * (beta / 10).square().sum(-1)
            - (sigma / 2.5).square().log1p()
            - 0.5 * resid.square().sum(-1)
            - n * sigma.log()
        )
