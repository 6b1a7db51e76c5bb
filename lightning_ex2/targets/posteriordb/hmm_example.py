"""posteriordb ``hmm_example-hmm_example``: a two-state hidden Markov model with normal
emissions, marginalised by the forward algorithm (4 parameters).

Stan program ``hmm_example``: transition rows ``theta1, theta2`` (``simplex[2]``),
state means ``mu`` (``positive_ordered[2]``, which labels the states), ``y_t ~
normal(mu[z_t], 1)``; priors ``mu[1] ~ normal(3, 1)``, ``mu[2] ~ normal(10, 1)``;
``target += log_sum_exp(gamma[N])`` with the forward recursion ``gamma[t, k] =
log_sum_exp_j(gamma[t-1, j] + log theta[j, k]) + normal_lpdf(y[t] | mu[k], 1)``
started at ``gamma[1, k] = normal_lpdf(y[1] | mu[k], 1)`` (no initial-state
distribution). The emission constant ``-log(2 pi) / 2`` per step is the same for
every path and dropped.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import register
from .base import Param, PositiveOrdered, PosteriorDBTarget, Simplex


@register
class HmmExample(PosteriorDBTarget):
    """Two-state Gaussian HMM (posteriordb ``hmm_example-hmm_example``);
    ``x = (theta1's and theta2's stick-breaking coordinates, log mu[1],
    log(mu[2] - mu[1]))``."""

    name = "hmm_example-hmm_example"

    def declare(self, data):  # type: ignore[no-untyped-def]
        k = int(data["K"])
        if k != 2:
            raise ValueError(f"{self.name}: the Stan program is written for K = 2, got K = {k}")
        return (
            Param("theta1", (k,), Simplex()),
            Param("theta2", (k,), Simplex()),
            Param("mu", (k,), PositiveOrdered()),
        )

    def setup(self, data) -> None:  # type: ignore[no-untyped-def]
        self.tensor("y", data["y"])

    def log_density(self, p: dict[str, Tensor]) -> Tensor:
        mu = p["mu"]  # [..., K]
        log_theta = torch.stack([p["theta1"], p["theta2"]], dim=-2).log()  # [..., j, k]
        # log emission densities [..., N, K]
        log_e = -0.5 * (self.y.unsqueeze(-1) - mu.unsqueeze(-2)).square()
        # gamma[N] = gamma[1] M_2 ... M_N in the (logsumexp, +) semiring, with
        # M_t[j, k] = log theta[j, k] + log_e[t, k]: the product by pairs (log2 N rounds)
        steps = log_theta.unsqueeze(-3) + log_e[..., 1:, :].unsqueeze(-2)  # [..., N-1, K, K]
        gamma = log_e[..., 0, :]
        while steps.shape[-3] > 1:
            if steps.shape[-3] % 2:  # fold the first factor into gamma
                gamma = torch.logsumexp(gamma.unsqueeze(-1) + steps[..., 0, :, :], dim=-2)
                steps = steps[..., 1:, :, :]
            a, b = steps[..., 0::2, :, :], steps[..., 1::2, :, :]
            steps = torch.logsumexp(a.unsqueeze(-1) + b.unsqueeze(-3), dim=-2)
        if steps.shape[-3]:
            gamma = torch.logsumexp(gamma.unsqueeze(-1) + steps[..., 0, :, :], dim=-2)
        prior = -0.5 * ((mu[..., 0] - 3.0).square() + (mu[..., 1] - 10.0).square())
        return prior + torch.logsumexp(gamma, dim=-1)
