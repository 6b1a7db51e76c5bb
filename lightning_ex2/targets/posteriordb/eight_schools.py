"""posteriordb ``eight_schools-eight_schools_noncentered``: the eight schools, non-centred.

Stan program ``eight_schools_noncentered``: ``theta = mu + tau * theta_trans``,
``theta_trans ~ N(0, 1)``, ``y_j ~ N(theta_j, sigma_j)``, ``mu ~ N(0, 5)``,
``tau ~ Cauchy+(0, 5)``. A hierarchical model whose posterior in ``(mu, log tau)``
is funnel-shaped (10-D). posteriordb records ``theta`` (the transformed parameter),
``mu`` and ``tau``.
"""

from __future__ import annotations

from torch import Tensor

from . import register
from .base import Lower, Param, PosteriorDBTarget


@register
class EightSchoolsNoncentered(PosteriorDBTarget):
    """Eight schools, non-centred (posteriordb ``eight_schools-eight_schools_noncentered``);
    ``x = (theta_trans[1..J], mu, log tau)``."""

    name = "eight_schools-eight_schools_noncentered"
    reported = ("theta", "mu", "tau")

    def declare(self, data):  # type: ignore[no-untyped-def]
        return (Param("theta_trans", (int(data["J"]),)), Param("mu"), Param("tau", (), Lower(0.0)))

    def setup(self, data) -> None:  # type: ignore[no-untyped-def]
        self.tensor("y", data["y"])
        self.tensor("sigma", data["sigma"])

    def transformed(self, p: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"theta": p["theta_trans"] * p["tau"].unsqueeze(-1) + p["mu"].unsqueeze(-1)}

    def parameters_from(self, values: dict[str, Tensor]) -> dict[str, Tensor]:
        if "theta_trans" in values:
            return values
        mu, tau = values["mu"].unsqueeze(-1), values["tau"].unsqueeze(-1)
        return {**values, "theta_trans": (values["theta"] - mu) / tau}

    def log_density(self, p: dict[str, Tensor]) -> Tensor:
        theta = self.transformed(p)["theta"]
        mu, tau = p["mu"], p["tau"]
        return (
            -0.5 * p["theta_trans"].square().sum(-1)
            - 0.5 * ((self.y - theta) / self.sigma).square().sum(-1)
            - 0.5 * (mu / 5.0).square()
            - (tau / 5.0).square().log1p()
        )
