"""Neal's funnel target."""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_ex2.validation import check_finite, check_int, check_positive

from .base import LOG_2PI, CenteredUncorrelated, TargetBase, check_n


class Funnel(CenteredUncorrelated, TargetBase):
    """Neal's funnel, a benchmark of Samsonov et al. 2022 (arXiv:2111.02702).

    ``x_0 ~ N(0, a^2)`` and ``x_i | x_0 ~ N(0, exp(2 b x_0))`` for ``i = 1..D-1``.
    ``log_prob`` is the exact (normalized) log density.

    Moments: mean 0; ``Var x_0 = a^2``, ``Var x_i = E exp(2 b x_0) = exp(2 b^2 a^2)``;
    all covariances vanish.

    Reference:
        Neal (2003), "Slice sampling", Annals of Statistics 31(3).

    Shapes:
        ``log_prob``: ``[..., D] -> [...]``; ``sample(n)``: ``[n, D]``.

    Example:
        >>> t = Funnel(dim=5)
        >>> x = t.sample(3, generator=torch.Generator().manual_seed(0))
        >>> t.log_prob(x).shape
        torch.Size([3])
    """

    def __init__(self, dim: int, a: float = 2.0, b: float = 0.5) -> None:
        super().__init__()
        name = type(self).__name__
        self.dim = check_int(dim, "dim", name, 2)
        self._scalar_buffers(a=check_positive(a, "a", name), b=check_finite(b, "b", name))

    @property
    def variance(self) -> Tensor:
        """``[D]``: ``a^2`` for ``x_0``, ``exp(2 b^2 a^2)`` for the others."""
        var = torch.exp(2 * self.b.square() * self.a.square()).expand(self.dim).clone()
        var[0] = self.a.square()
        return var

    def _terms(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """``(a, b, x_0 [...], exp(-2 b x_0) [...], S [...])``, ``S = sum_{i>=1} x_i^2``.

        One pass over ``x`` (the sum of squares); the rest is per row.
        """
        a, b = self.a.to(x), self.b.to(x)
        x0 = x[..., 0]
        s = torch.linalg.vector_norm(x[..., 1:], dim=-1).square()
        return a, b, x0, torch.exp(-2.0 * b * x0), s

    def _log_prob(self, x: Tensor, terms: tuple[Tensor, ...]) -> Tensor:
        # log N(x_0; 0, a^2) + sum_i log N(x_i; 0, exp(2 b x_0)), summed in closed form
        a, b, x0, e, s = terms
        return (
            -0.5 * ((x0 / a).square() + e * s + self.dim * LOG_2PI)
            - a.log()
            - (self.dim - 1) * b * x0
        )

    def log_prob(self, x: Tensor) -> Tensor:
        """Log density ``[..., D] -> [...]``, one pass over ``x``; differentiable in ``x``."""
        return self._log_prob(x, self._terms(x))

    @torch.no_grad()
    def log_prob_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(log pi(x) [...], grad log pi(x) [..., D])`` in closed form, no autograd graph.

        ``d/dx_i = -x_i exp(-2 b x_0)`` (``i >= 1``) and
        ``d/dx_0 = -x_0 / a^2 - (D - 1) b + b exp(-2 b x_0) S``.
        """
        terms = self._terms(x)
        a, b, x0, e, s = terms
        grad = x * (-e).unsqueeze(-1)
        grad[..., 0] = b * e * s - x0 / a.square() - (self.dim - 1) * b
        return self._log_prob(x, terms), grad

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` exact draws ``[n, D]`` on the buffers' device and dtype."""
        n = check_n(n)
        x = torch.randn(n, self.dim, generator=generator, dtype=self.a.dtype, device=self.a.device)
        x[:, 0] *= self.a
        x[:, 1:] *= torch.exp(self.b * x[:, :1])
        return x

    def extra_repr(self) -> str:
        return f"dim={self.dim}, a={self.a.item():g}, b={self.b.item():g}"
