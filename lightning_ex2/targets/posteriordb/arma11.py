"""posteriordb ``arma-arma11``: an ARMA(1, 1) model of a series of 200 (4 parameters).

Stan program ``arma11``: ``nu_1 = mu + phi mu`` (the error before the series taken as
0), ``nu_t = mu + phi y_{t-1} + theta err_{t-1}``, ``err_t = y_t - nu_t``,
``err ~ normal(0, sigma)``; priors ``mu ~ normal(0, 10)``, ``phi, theta ~ normal(0, 2)``
and ``sigma ~ cauchy(0, 2.5)`` on ``sigma > 0`` (the half-Cauchy's truncation is a
constant). Neither stationarity nor invertibility is imposed.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import register
from .base import Lower, Param, PosteriorDBTarget


@register
class Arma11(PosteriorDBTarget):
    """ARMA(1, 1) (posteriordb ``arma-arma11``); ``x = (mu, phi, theta, log sigma)``."""

    name = "arma-arma11"
    stan_parameters = (Param("mu"), Param("phi"), Param("theta"), Param("sigma", (), Lower(0.0)))

    def setup(self, data) -> None:  # type: ignore[no-untyped-def]
        self.tensor("y", data["y"])

    def log_density(self, p: dict[str, Tensor]) -> Tensor:
        mu, phi, theta, sigma = (p[k] for k in ("mu", "phi", "theta", "sigma"))
        y = self.y
        # innovations before the moving-average term: c_t = y_t - mu - phi y_{t-1}
        lagged = torch.cat([mu.unsqueeze(-1), y[:-1].expand(*mu.shape, -1)], dim=-1)
        c = y - mu.unsqueeze(-1) - phi.unsqueeze(-1) * lagged  # [..., T]
        # err_t = c_t - theta err_{t-1}, err_1 = c_1: a linear recurrence with a constant
        # coefficient, solved by a doubling scan (log2 T rounds instead of T steps):
        # after the round of shift s, err_t holds sum_{j < 2s} (-theta)^j c_{t-j}
        err, coef, shift = c, -theta.unsqueeze(-1), 1
        while shift < y.shape[-1]:
            err = torch.cat([err[..., :shift], err[..., shift:] + coef * err[..., :-shift]], -1)
            coef, shift = coef.square(), 2 * shift
        sq = err.square().sum(-1)
        n = y.shape[-1]
        prior = (
            -mu.square() / 200.0
            - (phi.square() + theta.square()) / 8.0
            - torch.log1p((sigma / 2.5).square())
        )
        return prior - n * sigma.log() - 0.5 * sq / sigma.square()
