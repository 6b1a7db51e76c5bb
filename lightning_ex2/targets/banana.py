"""Banana-shaped (twisted Gaussian) target of Haario et al. (1999)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import Target, check_int, check_n, check_positive, normal_log_prob


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

    def log_prob(self, x: Tensor) -> Tensor:
        b, sigma = self.b.to(x), self.sigma.to(x)
        even, odd = x[..., 0::2], x[..., 1::2]
        log_p = normal_log_prob(even, 0.0, sigma.log()).sum(-1)
        shift = b * (even[..., : self._n_pairs].square() - sigma.square())
        return log_p + normal_log_prob(odd, shift, 0.0).sum(-1)

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
