"""Unadjusted Langevin algorithm (Roberts & Tweedie 1996; Durmus & Moulines 2017).

``x' = x + h M^-1 grad log pi(x) + sqrt(2h M^-1) xi`` (``M^-1`` the identity or an
adapted diagonal) with no Metropolis correction: biased
by ``O(h)``, a baseline of the paper's GAN experiments. A move to a point whose
log-density or gradient is not finite is refused (the chain stays), so one bad
region cannot poison a chain with NaNs.

Example:
    >>> import torch, lightning_ex2 as lx
    >>> target = lx.targets.Gaussian(torch.zeros(2), torch.eye(2))
    >>> kernel = lx.kernels.ULA(step_size=0.05)
    >>> state, info = kernel.step(kernel.init(torch.zeros(4, 2), target), target)
"""

from __future__ import annotations

import torch
from torch import nn

from lightning_ex2.kernels.base import (
    GradientKernel,
    LocalInfo,
    LocalParams,
    ParamsArg,
    count_nonfinite,
    finite_rows,
)
from lightning_ex2.types import ChainState, Gen


class ULAParams(LocalParams):
    """ULA's parameters: ``step_size`` (fixed), ``inverse_mass_matrix`` ``None``/``[1, D]``."""

    __slots__ = ()


class ULA(GradientKernel):
    """Unadjusted Langevin with a fixed step size ``h``.

    Args:
        step_size: step size ``h``.
        mass_matrix: ``"identity"`` or ``"diagonal"`` (estimated during warm-up).
    """

    Params = ULAParams

    def __init__(self, step_size: float = 0.01, mass_matrix: str = "identity") -> None:
        super().__init__()
        if mass_matrix in ("dense", "auto"):
            raise ValueError(
                f"ULA: `mass_matrix` must be 'identity' or 'diagonal', got {mass_matrix!r}"
            )
        self._setup_params(step_size, None, False, mass_matrix)

    repr_fields = ("step_size", "mass_matrix")

    def step(
        self, state: ChainState, target: nn.Module, generator: Gen = None, params: ParamsArg = None
    ) -> tuple[ChainState, LocalInfo]:
        x, log_prob, grad, _, hx, m = self._start(state, target, params)
        hm = hx if m is None else hx * m
        y, _, log_prob_y, grad_y = self._langevin(x, grad, hm, target, generator)
        # Refuse a move to a non-finite log-density, gradient or point. The largest |.| of
        # [grad_y, y] is NaN/Inf iff a coordinate is, and 0 * m is 0 for a finite m, NaN
        # otherwise: one reduction and one test instead of three isfinite(...).all(-1).
        worst = torch.cat([grad_y, y], dim=-1).abs().amax(-1)
        ok = torch.isfinite(log_prob_y + 0.0 * worst)
        mask = ok.unsqueeze(-1)
        new = ChainState(
            x=torch.where(mask, y, x),
            log_prob=torch.where(ok, log_prob_y, log_prob),
            grad=torch.where(mask, grad_y, grad),
        )
        return new, LocalInfo(ok.to(x.dtype), count_nonfinite(log_prob_y, finite_rows(y)))
