"""Metropolis-adjusted Langevin algorithm (Roberts & Tweedie 1996).

Proposal ``y = x + h M^-1 grad log pi(x) + sqrt(2h M^-1) xi``, accepted with the
Metropolis-Hastings ratio ``pi(y) q(x|y) / (pi(x) q(y|x))`` where
``q(y|x) = N(y; x + h M^-1 grad log pi(x), 2h M^-1)``; ``M^-1`` is the identity or a
diagonal adapted during warm-up (``mass_matrix="diagonal"``). It is the default
*exploit* step of Ex2MCMC (Samsonov et al. 2022, Alg. 2).

Example:
    >>> import torch, lightning_ex2 as lx
    >>> target = lx.targets.Gaussian(torch.zeros(2), torch.eye(2))
    >>> kernel = lx.kernels.MALA(step_size=0.5)
    >>> state = kernel.init(torch.zeros(8, 2), target)
    >>> state, info = kernel.step(state, target)
    >>> info.accept_local.shape
    torch.Size([8])
    >>> params = kernel.init_params(8, state.x)  # MALAParams(step_size, inverse_mass_matrix)
    >>> state, info = kernel.step(state, target, None, params._replace(step_size=params.step_size / 2))
"""

from __future__ import annotations

from torch import nn

from lightning_ex2.kernels.base import GradientKernel, LocalInfo, LocalParams, ParamsArg
from lightning_ex2.types import ChainState, Gen


class MALAParams(LocalParams):
    """MALA's tuned parameters: ``step_size`` ``[]``/``[C]``, ``inverse_mass_matrix``
    ``None`` (identity) or ``[1, D]``."""

    __slots__ = ()


class MALA(GradientKernel):
    """MALA; the warm-up may adapt its step size by dual averaging and its diagonal
    mass matrix by windowed variance estimates (:class:`~lightning_ex2.kernels.Warmup`).

    Args:
        step_size: initial (or fixed) step size ``h``.
        target_accept: acceptance rate the warm-up adapts ``h`` toward
            (e.g. 0.574); ``None`` keeps ``h`` fixed.
        per_chain_step_size: adapt one step size per chain instead of one shared one.
        mass_matrix: ``"identity"`` or ``"diagonal"`` (the inverse mass matrix is then
            the chains' pooled per-coordinate variance, estimated during warm-up).
    """

    step_size_adaptable = True
    Params = MALAParams

    def __init__(
        self,
        step_size: float = 0.1,
        target_accept: float | None = None,
        per_chain_step_size: bool = False,
        mass_matrix: str = "identity",
    ) -> None:
        super().__init__()
        self._setup_params(step_size, target_accept, per_chain_step_size, mass_matrix)

    def step(
        self, state: ChainState, target: nn.Module, generator: Gen = None, params: ParamsArg = None
    ) -> tuple[ChainState, LocalInfo]:
        x, log_prob, grad, h, hx, m = self._start(state, target, params)
        hm = hx if m is None else hx * m
        y, noise, log_prob_y, grad_y = self._langevin(x, grad, hm, target, generator)
        log_q_fwd = -0.5 * noise.square().sum(-1)  # = -|y - x - h M^-1 g(x)|^2_M / (4h)
        if m is None:
            log_q_bwd = -(x - y - hx * grad_y).square().sum(-1) / (4 * h)
        else:
            log_q_bwd = -((x - y - hm * grad_y).square() / m).sum(-1) / (4 * h)
        log_alpha = log_prob_y - log_prob + log_q_bwd - log_q_fwd
        state = ChainState(x, log_prob, grad)  # with the gradient _start recomputed
        return self._metropolis(state, y, log_prob_y, grad_y, log_alpha, generator)
