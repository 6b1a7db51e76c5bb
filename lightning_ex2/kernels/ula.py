"""Unadjusted Langevin algorithm (Roberts & Tweedie 1996; Durmus & Moulines 2017).

``x' = x + h grad log pi(x) + sqrt(2h) xi`` with no Metropolis correction: biased
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
from torch import Tensor, nn

from lightning_ex2.kernels.adaptation import StepSize
from lightning_ex2.kernels.base import (
    ChainState,
    Kernel,
    check_start,
    log_prob_and_grad,
    randn,
)
from lightning_ex2.kernels.mala import LocalInfo, _per_chain


class ULA(StepSize, Kernel):
    """Unadjusted Langevin with a fixed step size ``h``.

    Args:
        step_size: step size ``h``.
    """

    uses_grad = True

    def __init__(self, step_size: float = 0.01) -> None:
        super().__init__()
        self._setup_step_size(step_size, None, False)

    def extra_repr(self) -> str:
        return f"step_size={self.step_size}"

    def init(self, x: Tensor, target: nn.Module) -> ChainState:
        log_prob, grad = log_prob_and_grad(target, x)
        check_start(x, log_prob, grad)
        h, _ = self._initial_step_size(x)
        return ChainState(x.detach(), log_prob, grad, h, None)

    def step(
        self,
        state: ChainState,
        target: nn.Module,
        generator: torch.Generator | None = None,
        *,
        adapt: bool = False,
    ) -> tuple[ChainState, LocalInfo]:
        x, log_prob, grad, h = state.x, state.log_prob, state.grad, state.step_size
        if grad is None:
            log_prob, grad = log_prob_and_grad(target, x)
        hx = _per_chain(h)
        noise = randn(tuple(x.shape), x, generator)
        y = torch.addcmul(torch.addcmul(x, hx, grad), (2 * hx).sqrt(), noise)
        log_prob_y, grad_y = log_prob_and_grad(target, y)
        # refuse a move to a non-finite log-density, gradient or point: the largest |.| of
        # [grad_y, y] is NaN/Inf iff a coordinate is, and 0 * m is 0 for finite m, NaN
        # otherwise (a few cheap ops instead of isfinite(t).all(-1) three times)
        worst = torch.cat([grad_y, y], dim=-1).abs().amax(-1)
        ok = torch.isfinite(log_prob_y + 0.0 * worst)
        mask = ok.unsqueeze(-1)
        new = state._replace(
            x=torch.where(mask, y, x),
            log_prob=torch.where(ok, log_prob_y, log_prob),
            grad=torch.where(mask, grad_y, grad),
        )
        return new, LocalInfo(ok.to(x.dtype))
