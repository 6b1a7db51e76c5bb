"""Shared code of the Gaussian-process ports: Stan's ``gp_exp_quad_cov`` and a
batched Cholesky factor computed in float64."""

from __future__ import annotations

import torch
from torch import Tensor


def exp_quad_cov(x: Tensor, alpha: Tensor, rho: Tensor) -> Tensor:
    """Stan's ``gp_exp_quad_cov(x, alpha, rho)``: ``alpha^2 exp(-(x_i - x_j)^2 / (2 rho^2))``,
    ``x [N]``, ``alpha, rho [...]`` -> ``[..., N, N]``."""
    sq = (x.unsqueeze(-1) - x.unsqueeze(-2)).square()
    a2 = alpha.square()[..., None, None]
    return a2 * torch.exp(-0.5 * sq / rho.square()[..., None, None])


def cholesky64(cov: Tensor) -> tuple[Tensor, Tensor]:
    """``(L, ok)``: the lower Cholesky factor of ``cov [..., N, N]`` computed in float64
    and returned in ``cov``'s dtype, and ``ok [...]``, False where ``cov`` is not
    positive definite (Stan rejects such a point: the caller returns ``-inf`` there).

    Float64 whatever the target's dtype: the Stan programs add a jitter (``1e-10``)
    far below float32's resolution, and float32 Cholesky factors of these smooth
    kernels fail."""
    chol, info = torch.linalg.cholesky_ex(cov.to(torch.float64))
    return chol.to(cov.dtype), info == 0
