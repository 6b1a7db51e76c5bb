"""posteriordb ``gp_pois_regr-gp_regr``: Gaussian-process regression of 11 points with
a squared-exponential kernel, the latent function marginalised (3 parameters).

Stan program ``gp_regr``: ``y ~ multi_normal_cholesky(0, L)`` with ``L`` the Cholesky
factor of ``gp_exp_quad_cov(x, alpha, rho) + sigma I`` -- note ``sigma``, not
``sigma^2``, on the diagonal; priors ``rho ~ gamma(25, 4)``, ``alpha ~ normal(0, 2)``,
``sigma ~ normal(0, 1)``, on positive parameters (the truncations are constants).
The Cholesky factor is computed in float64 (see :func:`._gp.exp_quad_cholesky`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import register
from ._gp import exp_quad_cholesky
from .base import Lower, Param, PosteriorDBTarget


@register
class GpRegr(PosteriorDBTarget):
    """GP regression (posteriordb ``gp_pois_regr-gp_regr``); ``x = (log rho, log alpha,
    log sigma)``."""

    name = "gp_pois_regr-gp_regr"
    stan_parameters = (
        Param("rho", (), Lower(0.0)),
        Param("alpha", (), Lower(0.0)),
        Param("sigma", (), Lower(0.0)),
    )

    def setup(self, data) -> None:  # type: ignore[no-untyped-def]
        self.tensor("x", data["x"])
        self.tensor("y", data["y"])

    def log_density(self, p: dict[str, Tensor]) -> Tensor:
        rho, alpha, sigma = p["rho"], p["alpha"], p["sigma"]
        chol, ok = exp_quad_cholesky(self.x, alpha, rho, sigma)
        # y ~ multi_normal_cholesky(0, L): -sum log diag L - |L^{-1} y|^2 / 2
        y = self.y.expand(*chol.shape[:-1]).unsqueeze(-1)
        z = torch.linalg.solve_triangular(chol, y, upper=False)[..., 0]
        like = -chol.diagonal(dim1=-2, dim2=-1).log().sum(-1) - 0.5 * z.square().sum(-1)
        prior = 24.0 * rho.log() - 4.0 * rho - alpha.square() / 8.0 - sigma.square() / 2.0
        return torch.where(ok, prior + like, torch.full_like(like, -torch.inf))
