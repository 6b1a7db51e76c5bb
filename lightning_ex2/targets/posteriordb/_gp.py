"""Shared code of the Gaussian-process ports: Stan's ``gp_exp_quad_cov`` and its
batched Cholesky factor, computed in float64."""

from __future__ import annotations

import torch
from torch import Tensor


def exp_quad_cov(x: Tensor, alpha: Tensor, rho: Tensor) -> Tensor:
    """Stan's ``gp_exp_quad_cov(x, alpha, rho)``: ``alpha^2 exp(-(x_i - x_j)^2 / (2 rho^2))``,
    ``x [N]``, ``alpha, rho [...]`` -> ``[..., N, N]``."""
    sq = (x.unsqueeze(-1) - x.unsqueeze(-2)).square()
    a2 = alpha.square()[..., None, None]
    return a2 * torch.exp(-0.5 * sq / rho.square()[..., None, None])


def exp_quad_cholesky(
    x: Tensor, alpha: Tensor, rho: Tensor, diag: Tensor | float
) -> tuple[Tensor, Tensor]:
    """``(L, ok)``: the lower Cholesky factor of ``gp_exp_quad_cov(x, alpha, rho) + diag I``
    ``[..., N, N]`` in ``alpha``'s dtype, and ``ok [...]``, False where that matrix is not
    positive definite (Stan rejects such a point: the caller returns ``-inf`` there).

    The matrix and its factor are computed in float64 whatever the target's dtype: the
    Stan programs add a jitter (``1e-10``) far below float32's resolution, and float32
    factors of these smooth kernels fail near the posterior (``diag``: a float or a
    tensor ``[...]``).
    """
    f64 = torch.float64
    eye = torch.eye(x.shape[-1], dtype=f64, device=x.device)
    diag64 = torch.as_tensor(diag, dtype=f64, device=x.device)[..., None, None]
    cov = exp_quad_cov(x.to(f64), alpha.to(f64), rho.to(f64)) + diag64 * eye
    chol, info = torch.linalg.cholesky_ex(cov)
    return chol.to(alpha.dtype), info == 0
