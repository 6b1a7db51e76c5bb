"""Metropolis-adjusted Langevin algorithm (Roberts & Tweedie 1996).

Proposal ``y = x + h grad log pi(x) + sqrt(2h) xi``, accepted with the
Metropolis-Hastings ratio ``pi(y) q(x|y) / (pi(x) q(y|x))`` where
``q(y|x) = N(y; x + h grad log pi(x), 2h I)``. It is the *exploit* step of
Ex2MCMC (Samsonov et al. 2022, Alg. 2).

Example:
    >>> import torch, lightning_ex2 as lx
    >>> target = lx.targets.Gaussian(torch.zeros(2), torch.eye(2))
    >>> kernel = lx.kernels.MALA(step_size=0.5)
    >>> state = kernel.init(torch.zeros(8, 2), target)
    >>> state, info = kernel.step(state, target)
    >>> info.accept_local.shape
    torch.Size([8])
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from lightning_ex2.kernels.adaptation import StepSize
from lightning_ex2.kernels.base import (
    ChainState,
    Kernel,
    check_start,
    log_prob_and_grad,
    metropolis_accept,
    randn,
    select,
)


class LocalInfo(NamedTuple):
    """Per-chain ``[C]`` diagnostics of a local (gradient) move."""

    accept_local: Tensor  # Metropolis-Hastings acceptance probability (ULA: 1 if finite)


def _per_chain(h: Tensor) -> Tensor:
    """Step size ``[]`` or ``[C]`` -> broadcastable against ``[C, D]``."""
    return h.unsqueeze(-1) if h.ndim else h


class MALA(StepSize, Kernel):
    """MALA with optional dual-averaging step-size adaptation during warm-up.

    Args:
        step_size: initial (or fixed) step size ``h``.
        target_accept: acceptance rate the warm-up adapts ``h`` toward
            (e.g. 0.574); ``None`` keeps ``h`` fixed.
        per_chain_step_size: adapt one step size per chain instead of one shared one.
    """

    uses_grad = True

    def __init__(
        self,
        step_size: float = 0.1,
        target_accept: float | None = None,
        per_chain_step_size: bool = False,
    ) -> None:
        super().__init__()
        self._setup_step_size(step_size, target_accept, per_chain_step_size)

    def extra_repr(self) -> str:
        return f"step_size={self.step_size}, target_accept={self.target_accept}"

    def init(self, x: Tensor, target: nn.Module) -> ChainState:
        log_prob, grad = log_prob_and_grad(target, x)
        check_start(x, log_prob, grad)
        h, da = self._initial_step_size(x)
        return ChainState(x.detach(), log_prob, grad, h, da)

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
        y = x + hx * grad + (2 * hx).sqrt() * noise
        log_prob_y, grad_y = log_prob_and_grad(target, y)
        log_q_fwd = -0.5 * noise.square().sum(-1)  # = -|y - x - h g(x)|^2 / (4h)
        log_q_bwd = -(x - y - hx * grad_y).square().sum(-1) / (4 * h)
        log_alpha = log_prob_y - log_prob + log_q_bwd - log_q_fwd
        log_alpha = torch.where(torch.isfinite(grad_y).all(-1), log_alpha, -torch.inf)
        accepted, accept_prob = metropolis_accept(log_alpha, generator)
        h, da = self._adapt(h, state.adapt, accept_prob, adapt)
        new = ChainState(
            x=select(accepted, y, x),
            log_prob=select(accepted, log_prob_y, log_prob),
            grad=select(accepted, grad_y, grad),
            step_size=h,
            adapt=da,
        )
        return new, LocalInfo(accept_prob)
