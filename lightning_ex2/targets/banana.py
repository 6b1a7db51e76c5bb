"""Banana-shaped (twisted Gaussian) target of Haario et al. (1999)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lightning_ex2.validation import check_finite, check_int, check_positive

from .base import LOG_2PI, CenteredUncorrelated, TargetBase, check_n


class Banana(CenteredUncorrelated, TargetBase):
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
        >>> t = Banana(dim=4, b=0.1, sigma=2.0)
        >>> t.variance  # sigma^2 and 1 + 2 b^2 sigma^4
        tensor([4.0000, 1.3200, 4.0000, 1.3200])
        >>> t.log_prob(t.sample(3, generator=torch.Generator().manual_seed(0))).shape
        torch.Size([3])
    """

    def __init__(self, dim: int, b: float = 0.02, sigma: float = 5.0) -> None:
        super().__init__()
        name = type(self).__name__
        self.dim = check_int(dim, "dim", name, 2)
        self._scalar_buffers(
            b=check_finite(b, "b", name), sigma=check_positive(sigma, "sigma", name)
        )
        self._n_pairs = self.dim // 2
        self._cache: tuple | None = None  # see _coefficients

    @property
    def variance(self) -> Tensor:
        """``[D]``: ``sigma^2`` at even, ``1 + 2 b^2 sigma^4`` at odd indices."""
        var = self.sigma.square().expand(self.dim).clone()
        var[1::2] = 1.0 + 2.0 * self.b.square() * self.sigma**4
        return var

    def _coefficients(self, x: Tensor) -> tuple[float, float, Tensor, Tensor, Tensor]:
        """``(b, const, A [D], B [D], -A [D])`` on ``x``'s device and dtype: ``A`` is
        ``1 / sigma`` at even and 1 at odd indices, ``B`` is 0 and ``b sigma^2``,
        ``const = ceil(D/2) log sigma + D/2 log 2 pi``.

        Cached per device, dtype and buffer version (one host read of ``b`` and
        ``sigma`` per cache entry, none per call).
        """
        key = (x.device, x.dtype, self.b.data_ptr(), self.b._version, self.sigma._version)
        cached = self._cache
        if cached is None or cached[0] != key:
            b, sigma = float(self.b), float(self.sigma)
            a_coef = torch.full((self.dim,), 1.0 / sigma, dtype=x.dtype, device=x.device)
            b_coef = torch.zeros(self.dim, dtype=x.dtype, device=x.device)
            a_coef[1::2] = 1.0
            b_coef[1::2] = b * sigma**2
            const = (self.dim - self._n_pairs) * math.log(sigma) + 0.5 * self.dim * LOG_2PI
            cached = (key, (b, const, a_coef, b_coef, -a_coef))
            self._cache = cached
        return cached[1]

    def _standardized(self, x: Tensor) -> tuple[Tensor, float, float, Tensor]:
        """``u [..., D]`` with ``u_{2k} = x_{2k} / sigma`` and ``r_k = u_{2k+1} = x_{2k+1} -
        b (x_{2k}^2 - sigma^2)`` (an unpaired last coordinate: ``x / sigma``), so that
        ``log pi = -|u|^2 / 2 - const``; also ``b``, ``const`` and ``-A``.

        One new tensor: ``u = A x + B``, then ``r -= b x_{2k}^2`` in place.
        """
        b, const, a_coef, b_coef, neg_a = self._coefficients(x)
        u = torch.addcmul(b_coef, x, a_coef)
        even, r = self._pairs(x)[0], self._pairs(u)[1]
        r.addcmul_(even, even, value=-b)  # in place on a view: autograd handles it
        return u, b, const, neg_a

    def _pairs(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """Views ``(t_{2k} [..., P], t_{2k+1} [..., P])`` of ``t [..., D]``."""
        pairs = t[..., : 2 * self._n_pairs].unflatten(-1, (self._n_pairs, 2))
        return pairs[..., 0], pairs[..., 1]

    def log_prob(self, x: Tensor) -> Tensor:
        """Log density ``[..., D] -> [...]``, about two passes over ``x``; differentiable in ``x``."""
        u, _, const, _ = self._standardized(x)
        return -0.5 * torch.linalg.vector_norm(u, dim=-1).square() - const

    @torch.no_grad()
    def log_prob_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(log pi(x) [...], grad log pi(x) [..., D])`` in closed form, no autograd graph.

        With ``r = x_{2k+1} - b (x_{2k}^2 - sigma^2)``: ``d/dx_{2k+1} = -r`` and
        ``d/dx_{2k} = -x_{2k} / sigma^2 + 2 b x_{2k} r``; an unpaired last coordinate
        has ``-x / sigma^2``. Computed in place in ``u``: ``u *= -A``, then the even
        entries ``-= 2 b x_{2k} u_{2k+1}``.
        """
        u, b, const, neg_a = self._standardized(x)
        log_prob = -0.5 * torch.linalg.vector_norm(u, dim=-1).square() - const
        u.mul_(neg_a)
        even, minus_r = self._pairs(x)[0], self._pairs(u)[1]
        self._pairs(u)[0].addcmul_(even, minus_r, value=-2.0 * b)
        return log_prob, u

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
