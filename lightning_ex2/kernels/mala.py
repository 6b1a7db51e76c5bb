"""Metropolis-adjusted Langevin algorithm (Roberts & Tweedie 1996).

Proposal ``y = x + h M^-1 grad log pi(x) + sqrt(2h M^-1) xi``, accepted with the
Metropolis-Hastings ratio ``pi(y) q(x|y) / (pi(x) q(y|x))`` where
``q(y|x) = N(y; x + h M^-1 grad log pi(x), 2h M^-1)``; ``M^-1`` is a dense covariance
(``"dense"``, for correlated posteriors) or a diagonal (``"diagonal"``) adapted during
warm-up (the default ``"auto"``: dense up to 100 dimensions, diagonal above), or the
identity. It is the default
*exploit* step of Ex2MCMC (Samsonov et al. 2022, Alg. 2).

Example:
    >>> import torch, lightning_ex2 as lx
    >>> target = lx.targets.Gaussian(torch.zeros(2), torch.eye(2))
    >>> kernel = lx.kernels.MALA(step_size=0.5)
    >>> state = kernel.init(torch.zeros(8, 2), target)
    >>> state, info = kernel.step(state, target)  # step size 0.5, identity metric
    >>> info.accept_local.shape
    torch.Size([8])
    >>> params = kernel.init_params(8, state.x)  # MALAParams(step_size, inverse_mass_matrix)
    >>> state, info = kernel.step(state, target, None, params._replace(step_size=params.step_size / 2))
"""

from __future__ import annotations

import torch
from torch import nn

from lightning_ex2.kernels.base import (
    GradientKernel,
    LocalInfo,
    LocalParams,
    ParamsArg,
    log_prob_and_grad,
    randn,
)
from lightning_ex2.types import ChainState, Gen


class MALAParams(LocalParams):
    """MALA's tuned parameters: ``step_size`` ``[]``/``[C]``, ``inverse_mass_matrix``
    ``None`` (identity), ``[1, D]`` or ``[1, D, D]`` (with ``inverse_mass_cholesky``)."""

    __slots__ = ()


class MALA(GradientKernel):
    """MALA; a warm-up (``lx.sample(..., burn_in=W)``, ``fit``) adapts its step size by
    dual averaging, one per chain, and its mass matrix by windowed estimates from the
    chains that mix, and re-starts lost chains from healthy ones
    (:class:`~lightning_ex2.kernels.Warmup`); then all is frozen.

    ``MALA()`` needs no tuning argument: the defaults are the ones that survive real
    posteriors (chains starting in steep regions, scales differing by orders of
    magnitude).

    Args:
        step_size: initial step size ``h`` (fixed when ``target_accept=None``).
        target_accept: acceptance rate the warm-up adapts ``h`` toward; the default
            0.574 is the optimal scaling of MALA (Roberts & Rosenthal 1998); ``None``
            keeps ``h`` fixed.
        per_chain_step_size: adapt one step size per chain (default) instead of one
            shared one from the chains' mean acceptance.
        mass_matrix: ``"auto"`` (default: ``"dense"`` up to
            :data:`~lightning_ex2.kernels.base.AUTO_DENSE_MAX_DIM` = 100 dimensions,
            ``"diagonal"`` above), ``"dense"`` (the chains' pooled covariance, estimated
            during warm-up: what correlated posteriors need; costs ``O(D^2)`` per chain
            and step), ``"diagonal"`` (their per-coordinate variance) or ``"identity"``.
    """

    step_size_adaptable = True
    Params = MALAParams

    def __init__(
        self,
        step_size: float = 0.1,
        target_accept: float | None = 0.574,
        per_chain_step_size: bool = True,
        mass_matrix: str = "auto",
    ) -> None:
        super().__init__()
        self._setup_params(step_size, target_accept, per_chain_step_size, mass_matrix)

    def step(
        self, state: ChainState, target: nn.Module, generator: Gen = None, params: ParamsArg = None
    ) -> tuple[ChainState, LocalInfo]:
        x, log_prob, grad, h, hx, m = self._start(state, target, params)
        chol = self._cholesky(params)
        if chol is not None:
            return self._dense_step(x, log_prob, grad, h, hx, m[0], chol, target, generator)
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

    def _dense_step(self, x, log_prob, grad, h, hx, cov, chol, target, generator):  # type: ignore[no-untyped-def]
        """The step with a dense ``M^-1 = cov = L L'`` (rows: ``M^-1 g`` is ``g @ cov``,
        ``M^-1/2 xi`` is ``xi @ L'``)."""
        noise = randn(tuple(x.shape), x, generator)
        y = x + hx * (grad @ cov) + (2 * hx).sqrt() * (noise @ chol.mT)
        log_prob_y, grad_y = log_prob_and_grad(target, y)
        log_q_fwd = -0.5 * noise.square().sum(-1)
        back = x - y - hx * (grad_y @ cov)  # |back|^2 in the metric M = cov^-1
        white = torch.linalg.solve_triangular(chol.mT, back, upper=True, left=False)
        log_q_bwd = -white.square().sum(-1) / (4 * h)
        log_alpha = log_prob_y - log_prob + log_q_bwd - log_q_fwd
        state = ChainState(x, log_prob, grad)
        return self._metropolis(state, y, log_prob_y, grad_y, log_alpha, generator)
