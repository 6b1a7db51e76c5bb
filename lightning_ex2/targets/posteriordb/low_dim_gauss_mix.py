"""posteriordb ``low_dim_gauss_mix-low_dim_gauss_mix``: a two-component normal mixture (5-D).

Stan program ``low_dim_gauss_mix``: ``y_n ~ theta N(mu_1, sigma_1) + (1 - theta)
N(mu_2, sigma_2)`` with ordered means ``mu_1 < mu_2``, ``mu, sigma ~ N(0, 2)``
(``sigma > 0``), ``theta ~ Beta(5, 5)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import register
from .base import Bounded, Lower, Ordered, Param, PosteriorDBTarget


@register
class LowDimGaussMix(PosteriorDBTarget):
    """Two-component normal mixture (posteriordb ``low_dim_gauss_mix-low_dim_gauss_mix``);
    ``x = (mu[1], log(mu[2] - mu[1]), log sigma[1..2], logit theta)``."""

    name = "low_dim_gauss_mix-low_dim_gauss_mix"
    stan_parameters = (
        Param("mu", (2,), Ordered()),
        Param("sigma", (2,), Lower(0.0)),
        Param("theta", (), Bounded(0.0, 1.0)),
    )

    def setup(self, data) -> None:  # type: ignore[no-untyped-def]
        self.tensor("y", data["y"])

    def log_density(self, p: dict[str, Tensor]) -> Tensor:
        mu, sigma, theta = p["mu"], p["sigma"], p["theta"]
        y = self.y
        mu1, mu2, s1, s2 = (v.unsqueeze(-1) for v in (*mu.unbind(-1), *sigma.unbind(-1)))
        c1 = -0.5 * ((y - mu1) / s1).square() - s1.log() + theta.log().unsqueeze(-1)
        c2 = -0.5 * ((y - mu2) / s2).square() - s2.log() + torch.log1p(-theta).unsqueeze(-1)
        lik = torch.logaddexp(c1, c2).sum(-1)
        prior = (
            -0.5 * (sigma / 2).square().sum(-1)
            - 0.5 * (mu / 2).square().sum(-1)
            + 4 * theta.log()
            + 4 * torch.log1p(-theta)
        )
        return lik + prior
