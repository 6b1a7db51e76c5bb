"""Banana-shaped (twisted Gaussian) target of Haario et al. (1999)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import LOG_2PI, Target, check_int, check_n, check_positive


class Banana(Target):
    """Haario et al.'s twisted Gaussian, the "banana" benchmark of Samsonov et al. 2022.

    Coordinates are paired ``(x_{2k}, x_{2k+1})`` (0-based):
    ``x_{2k} ~ N(0, sigma^2)`` and ``x_{2k+1} | x_{2k} ~ N(b (x_{2k}^2 - sigma^2), 1)``.
    For odd ``dim`` the last, unpaired coordinate is ``N(0, sigma^2)``.
    ``log_prob`` is the exact (normalized) log density.

    Moments: mean 0; variances ``sigma^2`` (even indices) and
    ``1 + 2 b^2 sigma^4`` (odd indices); all covariances vanish.

    References:
        Haario, Saksman, Tamminen (1999), "Adaptive proposal distribution for random
        walk Metropolis algorithm"; Samsonov et al. (2022), arXiv:2111.02702.

    Shapes:
        ``log_prob``: ``[..., D] -> [...]``; ``sample(n)``: ``[n, D]``.

    Example:
        >>> t = Banana(dim=4)
        >>> x = t.sample(3, generator=torch.Generator().manual_seed(0))
        >>> t.log_prob(x).shape
        torch.Size([3])
    """

    def __init__(self, dim: int, b: float = 0.02, sigma: float = 5.0) -> None:
        super().__init__()
        name = type(self).__name__
        self.dim = check_int(dim, "dim", name, 2)
        try:
            b_f = float(b)
        except (TypeError, ValueError):
            b_f = float("nan")
        if not math.isfinite(b_f):
            raise ValueError(f"{name}: `b` must be a finite number, got {b!r}")
        sigma_f = check_positive(sigma, "sigma", name)
        dtype = torch.get_default_dtype()
        self.register_buffer("b", torch.tensor(b_f, dtype=dtype))
        self.register_buffer("sigma", torch.tensor(sigma_f, dtype=dtype))
        self._n_pairs = self.dim // 2

    @property
    def mean(self) -> Tensor:
        """``[D]`` zeros."""
        return torch.zeros_like(self.sigma).expand(self.dim).clone()

    @property
    def variance(self) -> Tensor:
        """``[D]``: ``sigma^2`` at even, ``1 + 2 b^2 sigma^4`` at odd indices."""
        var = self.sigma.square().expand(self.dim).clone()
        var[1::2] = 1.0 + 2.0 * self.b.square() * self.sigma**4
        return var

    @property
    def covariance(self) -> Tensor:
        """``[D, D]`` diagonal covariance."""
        return torch.diag(self.variance)

    def _coefficients(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Per-coordinate ``A, B, C`` ``[D]`` of :meth:`_standardized`: ``A`` is ``1 / sigma``
        at even and 1 at odd indices, ``B`` and ``C`` are 0 at even and ``b sigma^2``,
        ``-b`` at odd indices."""
        b, sigma = self.b.to(x), self.sigma.to(x)
        odd = torch.arange(self.dim, device=x.device) % 2 == 1
        zero = torch.zeros((), dtype=x.dtype, device=x.device)
        a_coef = torch.where(odd, torch.ones_like(zero), sigma.reciprocal())
        return a_coef, torch.where(odd, b * sigma.square(), zero), torch.where(odd, -b, zero)

    def _standardized(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``u [..., D]`` with ``u_{2k} = x_{2k} / sigma`` and ``u_{2k+1} = x_{2k+1} -
        b (x_{2k}^2 - sigma^2)`` (an unpaired last coordinate: ``x / sigma``), so that
        ``log pi = -|u|^2 / 2 + const``; also ``A`` ``[D]``, ``C`` ``[D]`` and
        ``s = C_{j+1} x_j`` ``[..., D-1]``.

        Every operation reads ``x`` contiguously (shifted views, no stride-2 access):
        ``u = B + A x``, then ``u_{j+1} += C_{j+1} x_j^2``.
        """
        a_coef, b_coef, c_coef = self._coefficients(x)
        u = torch.addcmul(b_coef, x, a_coef)
        s = x[..., :-1] * c_coef[1:]
        u[..., 1:].addcmul_(s, x[..., :-1])
        return u, a_coef, c_coef, s

    def _log_prob(self, u: Tensor, x: Tensor) -> Tensor:
        n_even = self.dim - self._n_pairs
        const = n_even * self.sigma.to(x).log() + 0.5 * self.dim * LOG_2PI
        return -0.5 * torch.linalg.vector_norm(u, dim=-1).square() - const

    def log_prob(self, x: Tensor) -> Tensor:
        """Log density ``[..., D] -> [...]``, a few contiguous passes; differentiable in ``x``."""
        return self._log_prob(self._standardized(x)[0], x)

    @torch.no_grad()
    def log_prob_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(log pi(x) [...], grad log pi(x) [..., D])`` in closed form, no autograd graph.

        With ``u`` of :meth:`_standardized`, ``grad_j = -A_j u_j - 2 C_{j+1} x_j u_{j+1}``,
        i.e. ``-r`` at odd and ``x_{2k} (2 b r - 1 / sigma^2)`` at even indices
        (``r = u_{2k+1}``).
        """
        u, a_coef, _, s = self._standardized(x)
        grad = u * -a_coef
        grad[..., :-1].addcmul_(u[..., 1:], s, value=-2.0)
        return self._log_prob(u, x), grad

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` exact draws ``[n, D]`` on the buffers' device and dtype."""
        n = check_n(n)
        x = torch.randn(
            n, self.dim, generator=generator, dtype=self.sigma.dtype, device=self.sigma.device
        )
        x[:, 0::2] *= self.sigma
        x[:, 1::2] += self.b * (x[:, 0 : 2 * self._n_pairs : 2].square() - self.sigma.square())
        return x

    def extra_repr(self) -> str:
        return f"dim={self.dim}, b={self.b.item():g}, sigma={self.sigma.item():g}"
