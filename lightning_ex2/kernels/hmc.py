"""Hamiltonian Monte Carlo with a leapfrog integrator (Duane et al. 1987; Neal 2011).

A dense mass matrix ``M`` (``mass_matrix="dense"``: ``M^-1`` is the chains' pooled
covariance estimated during warm-up), a diagonal one (``"diagonal"``: their variances;
by default ``"auto"``: dense up to 100 dimensions, diagonal above) or the identity; ``n_leapfrog`` steps of size ``h``; costs ``n_leapfrog``
gradient evaluations per step. A trajectory that leaves the finite region
(NaN/Inf energy) is rejected.

Example:
    >>> import torch, lightning_ex2 as lx
    >>> funnel = lx.targets.Funnel(dim=3)
    >>> hmc = lx.kernels.HMC(step_size=0.1, n_leapfrog=5)
    >>> state, info = hmc.step(hmc.init(torch.zeros(4, 3), funnel), funnel, params=0.2)
    >>> info.accept_local.shape
    torch.Size([4])
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
    rand,
    randn,
)
from lightning_ex2.types import ChainState, Gen


class HMCParams(LocalParams):
    """HMC's tuned parameters: leapfrog ``step_size`` ``[]``/``[C]``,
    ``inverse_mass_matrix`` ``None`` (identity), ``[1, D]`` or ``[1, D, D]`` (with
    ``inverse_mass_cholesky``)."""

    __slots__ = ()


class HMC(GradientKernel):
    """HMC; a warm-up (``lx.sample(..., burn_in=W)``, ``fit``) adapts the leapfrog step
    size by dual averaging, one per chain, and the mass matrix from the chains that
    mix, and re-starts lost chains from healthy ones
    (:class:`~lightning_ex2.kernels.Warmup`); then all is frozen. ``HMC(n_leapfrog=L)``
    needs no tuning argument.

    Args:
        step_size: initial leapfrog step size ``h`` (fixed when ``target_accept=None``).
        n_leapfrog: leapfrog steps per transition ``L >= 1``.
        target_accept: acceptance rate the warm-up adapts ``h`` toward; the default
            0.65 is the optimal scaling of HMC (Beskos et al. 2013); ``None`` keeps
            ``h`` fixed.
        per_chain_step_size: adapt one step size per chain (default) instead of one
            shared one from the chains' mean acceptance.
        jitter: each transition multiplies each chain's step size by a uniform draw
            in ``[1 - jitter, 1 + jitter]`` (Neal 2011, Sec. 5.4.2.2). The default 0.5
            breaks the resonances of a fixed trajectory length ``L h``: with
            ``jitter=0`` a trajectory close to a half period of some direction of a
            Gaussian-like target returns near its start (or its mirror image), and the
            chain barely moves there (on a 10-D rotated Gaussian of scales 1-5, 50x
            lower ESS). ``0`` disables it. Valid: the draw does not depend on the state.
        mass_matrix: ``"auto"`` (default: ``"dense"`` up to
            :data:`~lightning_ex2.kernels.base.AUTO_DENSE_MAX_DIM` = 100 dimensions,
            ``"diagonal"`` above), ``"dense"`` (for correlated posteriors),
            ``"diagonal"`` or ``"identity"``; all but the last are estimated during
            warm-up.
    """

    step_size_adaptable = True
    Params = HMCParams
    repr_fields = ("step_size", "n_leapfrog", "target_accept", "jitter", "mass_matrix")

    def __init__(
        self,
        step_size: float = 0.1,
        n_leapfrog: int = 10,
        target_accept: float | None = 0.65,
        per_chain_step_size: bool = True,
        jitter: float = 0.5,
        mass_matrix: str = "auto",
    ) -> None:
        super().__init__()
        self._setup_params(step_size, target_accept, per_chain_step_size, mass_matrix)
        if not 0.0 <= jitter < 1.0:
            raise ValueError(f"`jitter` must lie in [0, 1), got {jitter!r}")
        self.jitter = float(jitter)
        if int(n_leapfrog) != n_leapfrog or n_leapfrog < 1:
            raise ValueError(f"`n_leapfrog` must be a positive integer, got {n_leapfrog!r}")
        self.n_leapfrog = int(n_leapfrog)

    def step(
        self, state: ChainState, target: nn.Module, generator: Gen = None, params: ParamsArg = None
    ) -> tuple[ChainState, LocalInfo]:
        x, log_prob, grad, _, hx, m = self._start(state, target, params)
        if self.jitter > 0:
            u = rand((x.shape[0], 1), x, generator)
            hx = hx * (1.0 + self.jitter * (2.0 * u - 1.0))
        p = randn(tuple(x.shape), x, generator)
        chol = self._cholesky(params)
        if chol is not None:  # p ~ N(0, M), M = (L L')^-1: p = xi L^-1 (rows); dq = h p M^-1
            cov = m[0]
            p = torch.linalg.solve_triangular(chol, p, upper=False, left=False)
            kinetic = lambda p: 0.5 * (p @ chol).square().sum(-1)  # noqa: E731
            velocity = lambda p: p @ cov  # noqa: E731
        elif m is None:  # the identity: main's arithmetic exactly
            hm, kinetic = hx, lambda p: 0.5 * p.square().sum(-1)
        else:  # p ~ N(0, M), K(p) = p' M^-1 p / 2, dq = h M^-1 p
            hm, kinetic = hx * m, lambda p: 0.5 * (p.square() * m).sum(-1)
            p = p * m.rsqrt()
        energy0 = -log_prob + kinetic(p)
        q, lp_q, g_q = x, log_prob, grad
        p = p + 0.5 * hx * g_q
        for i in range(self.n_leapfrog):
            q = q + (hx * velocity(p) if chol is not None else hm * p)
            lp_q, g_q = log_prob_and_grad(target, q)
            if i < self.n_leapfrog - 1:
                p = p + hx * g_q
        p = p + 0.5 * hx * g_q
        energy1 = -lp_q + kinetic(p)
        state = ChainState(x, log_prob, grad)  # with the gradient _start recomputed
        return self._metropolis(state, q, lp_q, g_q, energy0 - energy1, generator)
