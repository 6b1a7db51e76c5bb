"""posteriordb ``kilpisjarvi_mod-kilpisjarvi``: a linear trend of summer temperatures (3-D).

Stan program ``kilpisjarvi``: ``y_n ~ N(alpha + beta x_n, sigma)`` with ``x`` the years
(about 1952-2013, not centred), ``alpha ~ N(pmualpha, psalpha)``,
``beta ~ N(pmubeta, psbeta)``, flat ``sigma > 0``. With uncentred years the posterior
of ``(alpha, beta)`` is correlated at about -0.9999: a strongly correlated target.
"""

from __future__ import annotations

from torch import Tensor

from . import register
from .base import Lower, Param, PosteriorDBTarget


@register
class Kilpisjarvi(PosteriorDBTarget):
    """Linear regression on uncentred years (posteriordb ``kilpisjarvi_mod-kilpisjarvi``);
    ``x = (alpha, beta, log sigma)``."""

    name = "kilpisjarvi_mod-kilpisjarvi"
    stan_parameters = (Param("alpha"), Param("beta"), Param("sigma", (), Lower(0.0)))

    def setup(self, data) -> None:  # type: ignore[no-untyped-def]
        self.tensor("x", data["x"])
        self.tensor("y", data["y"])
        self.prior = tuple(float(data[k]) for k in ("pmualpha", "psalpha", "pmubeta", "psbeta"))

    def log_density(self, p: dict[str, Tensor]) -> Tensor:
        alpha, beta, sigma = p["alpha"], p["beta"], p["sigma"]
        ma, sa, mb, sb = self.prior
        mean = alpha.unsqueeze(-1) + beta.unsqueeze(-1) * self.x
        resid = (self.y - mean) / sigma.unsqueeze(-1)
        return (
            -0.5 * ((alpha - ma) / sa).square()
            - 0.5 * ((beta - mb) / sb).square()
            - 0.5 * resid.square().sum(-1)
            - self.y.shape[-1] * sigma.log()
        )
