"""posteriordb ``garch-garch11``: a GARCH(1,1) model of a return series (4 parameters).

Stan program ``garch11``: ``sigma_t^2 = alpha0 + alpha1 (y_{t-1} - mu)^2 +
beta1 sigma_{t-1}^2``, ``y_t ~ N(mu, sigma_t)``, ``beta1 < 1 - alpha1``; flat priors.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import register
from .base import Bounded, Lower, Param, PosteriorDBTarget


@register
class Garch11(PosteriorDBTarget):
    """GARCH(1,1) (posteriordb ``garch-garch11``); ``x = (mu, log alpha0, logit alpha1,
    logit(beta1 / (1 - alpha1)))``."""

    name = "garch-garch11"
    stan_parameters = (
        Param("mu"),
        Param("alpha0", (), Lower(0.0)),
        Param("alpha1", (), Bounded(0.0, 1.0)),
        Param("beta1", (), Bounded(0.0, lambda p: 1 - p["alpha1"])),
    )

    def setup(self, data) -> None:  # type: ignore[no-untyped-def]
        self.tensor("y", data["y"])
        self.tensor("sigma1", data["sigma1"])

    def log_density(self, p: dict[str, Tensor]) -> Tensor:
        mu, a0, a1, b1 = (p[k].unsqueeze(-1) for k in ("mu", "alpha0", "alpha1", "beta1"))
        y = self.y
        # sigma_t^2 = beta1 sigma_{t-1}^2 + w_t with w_0 = sigma1^2 and
        # w_t = alpha0 + alpha1 (y_{t-1} - mu)^2, i.e. sigma_t^2 = sum_{s<=t} beta1^(t-s) w_s:
        # a prefix scan in log2(T) doubling steps instead of T sequential ones
        w = a0 + a1 * (y[:-1] - mu).square()  # [..., T-1]
        acc = torch.cat([self.sigma1.square().expand_as(mu), w], dim=-1)
        power, k = b1, 1
        while k < acc.shape[-1]:
            acc = torch.cat([acc[..., :k], acc[..., k:] + power * acc[..., :-k]], dim=-1)
            power, k = power * power, 2 * k
        variance = acc
        return (-0.5 * (y - mu).square() / variance - 0.5 * variance.log()).sum(-1)
