"""Multivariate Gaussian target ``N(mean, cov)`` with a full covariance."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .base import LOG_2PI, TargetBase, as_float_tensor, check_n


def cholesky_checked(cov: Tensor, name: str, cls: str) -> Tensor:
    """Lower Cholesky factor(s) of float64 ``cov [..., D, D]``; ValueError naming ``name``."""
    if not torch.allclose(cov, cov.mT, rtol=1e-6, atol=1e-10):
        raise ValueError(f"{cls}: `{name}` must be symmetric")
    chol, info = torch.linalg.cholesky_ex(cov)
    if (info != 0).any():
        raise ValueError(f"{cls}: `{name}` must be positive definite")
    return chol


def tril_inverse(chol: Tensor) -> Tensor:
    """``L^{-1}`` of lower-triangular ``L [..., D, D]`` (computed in float64)."""
    eye = torch.eye(chol.shape[-1], dtype=chol.dtype).expand_as(chol)
    return torch.linalg.solve_triangular(chol, eye, upper=False)


class Gaussian(TargetBase):
    """``N(mean, cov)`` with exact sampler; the baseline target of Samsonov et al. 2022.

    ``cov`` may be a full ``[D, D]`` matrix, a ``[D]`` vector of variances
    (diagonal covariance) or a positive scalar (isotropic ``cov * I``).
    The Cholesky factor is computed in float64 and stored (with its inverse) as
    buffers of the default dtype.

    Args:
        mean: ``[D]`` mean vector.
        cov: covariance ``[D, D]``, variances ``[D]`` or a scalar variance.

    Shapes:
        ``log_prob``: ``[..., D] -> [...]``; ``sample(n)``: ``[n, D]``.

    Example:
        >>> g = Gaussian(torch.zeros(2), torch.tensor([[2.0, 0.5], [0.5, 1.0]]))
        >>> g.sample(4, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([4, 2])
        >>> g.log_prob(torch.zeros(3, 2)).shape
        torch.Size([3])
    """

    def __init__(self, mean: Any, cov: Any = 1.0) -> None:
        super().__init__()
        name = type(self).__name__
        loc = as_float_tensor(mean, "mean", name, ndim=1, what="1-D tensor [D]")
        dim = loc.numel()
        cov_t = as_float_tensor(cov, "cov", name)
        if cov_t.ndim == 0 or cov_t.ndim == 1:
            if cov_t.ndim == 1 and cov_t.shape != (dim,):
                raise ValueError(
                    f"{name}: `cov` as variances must have shape ({dim},), got {tuple(cov_t.shape)}"
                )
            if not (cov_t > 0).all():
                raise ValueError(f"{name}: `cov` variances must be positive (positive definite)")
            cov_t = torch.diag_embed(cov_t.expand(dim))
        elif cov_t.shape != (dim, dim):
            raise ValueError(
                f"{name}: `cov` must have shape ({dim}, {dim}) to match `mean`, got {tuple(cov_t.shape)}"
            )
        chol = cholesky_checked(cov_t, "cov", name)
        dtype = torch.get_default_dtype()
        self.dim = dim
        self.register_buffer("loc", loc.to(dtype))
        self.register_buffer("scale_tril", chol.to(dtype))
        self.register_buffer("_inv_tril", tril_inverse(chol).to(dtype))

    @property
    def mean(self) -> Tensor:
        """``[D]`` mean."""
        return self.loc

    @property
    def covariance(self) -> Tensor:
        """``[D, D]`` covariance ``L L^T``."""
        return self.scale_tril @ self.scale_tril.mT

    @property
    def variance(self) -> Tensor:
        """``[D]`` marginal variances."""
        return self.scale_tril.square().sum(-1)

    def _log_prob(self, z: Tensor) -> Tensor:
        half_logdet = self.scale_tril.diagonal().log().sum().to(z)
        return (
            -0.5 * (torch.linalg.vector_norm(z, dim=-1).square() + self.dim * LOG_2PI) - half_logdet
        )

    def log_prob(self, x: Tensor) -> Tensor:
        """Log density ``[..., D] -> [...]``; differentiable in ``x``."""
        z = (x - self.loc.to(x)) @ self._inv_tril.to(x).mT
        return self._log_prob(z)

    @torch.no_grad()
    def log_prob_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(log pi(x) [...], grad log pi(x) [..., D])``: the gradient is ``-L^{-T} z``
        with ``z = L^{-1} (x - mean)``; no autograd graph."""
        inv = self._inv_tril.to(x)
        z = (x - self.loc.to(x)) @ inv.mT
        return self._log_prob(z), -(z @ inv)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` exact draws ``[n, D]`` on the buffers' device and dtype."""
        n = check_n(n)
        z = torch.randn(
            n, self.dim, generator=generator, dtype=self.loc.dtype, device=self.loc.device
        )
        return self.loc + z @ self.scale_tril.mT
