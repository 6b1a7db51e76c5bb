"""posteriordb ``gp_pois_regr-gp_pois_regr``: a latent Gaussian process with a Poisson
likelihood on 11 counts, non-centred (13 parameters).

Stan program ``gp_pois_regr``: ``f = L f_tilde`` (transformed parameter) with ``L``
the Cholesky factor of ``gp_exp_quad_cov(x, alpha, rho) + 1e-10 I``, ``f_tilde ~
normal(0, 1)``, ``k ~ poisson_log(f)`` (``~`` drops ``-log k!``); priors ``rho ~
gamma(25, 4)``, ``alpha ~ normal(0, 2)`` on positive parameters. posteriordb's
reference draws name ``rho, alpha, f[1..11]`` (the transformed ``f``, not
``f_tilde``): ``reported``, :meth:`GpPoisRegr.transformed` and
:meth:`GpPoisRegr.parameters_from` tell the base, whose ``constrain`` then adds ``f`` and
whose ``flat_names`` list it. The
Cholesky factor is computed in float64 (see :func:`._gp.exp_quad_cholesky`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import register
from ._gp import exp_quad_cholesky
from .base import Lower, Param, PosteriorDBTarget


@register
class GpPoisRegr(PosteriorDBTarget):
    """Latent GP Poisson regression (posteriordb ``gp_pois_regr-gp_pois_regr``);
    ``x = (log rho, log alpha, f_tilde[1..N])``."""

    name = "gp_pois_regr-gp_pois_regr"

    def declare(self, data):  # type: ignore[no-untyped-def]
        return (
            Param("rho", (), Lower(0.0)),
            Param("alpha", (), Lower(0.0)),
            Param("f_tilde", (int(data["N"]),)),
        )

    def setup(self, data) -> None:  # type: ignore[no-untyped-def]
        self.tensor("x", data["x"])
        self.tensor("k", data["k"])

    #: posteriordb records the transformed ``f``, not ``f_tilde``
    reported = ("rho", "alpha", "f")

    def _chol(self, p: dict[str, Tensor]) -> Tensor:
        chol, ok = exp_quad_cholesky(self.x, p["alpha"], p["rho"], 1e-10)
        # NaN where the covariance is not positive definite (Stan rejects the point)
        return torch.where(ok[..., None, None], chol, torch.full_like(chol, torch.nan))

    def transformed(self, p: dict[str, Tensor]) -> dict[str, Tensor]:
        """Stan's ``transformed parameters``: ``f = L f_tilde``."""
        return {"f": (self._chol(p) * p["f_tilde"].unsqueeze(-2)).sum(-1)}

    def parameters_from(self, values: dict[str, Tensor]) -> dict[str, Tensor]:
        """``f_tilde = L^{-1} f`` from posteriordb's ``rho, alpha, f``."""
        if "f_tilde" not in values:
            chol = self._chol(values)
            f = torch.as_tensor(values["f"]).to(chol.dtype).unsqueeze(-1)
            values["f_tilde"] = torch.linalg.solve_triangular(chol, f, upper=False)[..., 0]
        return values

    def log_density(self, p: dict[str, Tensor]) -> Tensor:
        rho, alpha = p["rho"], p["alpha"]
        f = self.transformed(p)["f"]
        prior = 24.0 * rho.log() - 4.0 * rho - alpha.square() / 8.0
        lp = prior - 0.5 * p["f_tilde"].square().sum(-1) + (self.k * f - f.exp()).sum(-1)
        return torch.where(f.isnan().any(-1), torch.full_like(lp, -torch.inf), lp)
