"""Iterated sampling importance resampling, i-SIR (Samsonov et al. 2022, Alg. 1).

Each chain keeps its current point as particle 0, draws ``N - 1`` fresh
particles from a global proposal ``q`` and moves to particle ``j`` with
probability proportional to ``w_j = pi(x_j) / q(x_j)``. One batched target call
on ``[C * (N - 1), D]`` per step; selection by the Gumbel-max trick, so the step
never synchronises with the host.

*Dependent proposals* (``correlation = rho > 0``, paper Sec. 3): in the
proposal's standardized space (where ``q = N(0, I)``), draw a shared latent
``U = rho_0 z + sqrt(1 - rho_0^2) xi`` from the current point ``z`` and fresh
particles ``z_i = rho_i U + sqrt(1 - rho_i^2) xi_i``; each ``rho_i`` (``i >= 0``,
the current particle's included) equals ``rho`` with probability
``correlation_prob``, else 0. Every particle is then marginally ``q`` and the
particles are exchangeable, so the ordinary weights ``pi / q`` keep ``pi``
invariant. (Drawing ``rho_0`` like the others is what makes the particle system
exchangeable; fixing ``rho_0 = rho`` while the others are random would not be.)

Example:
    >>> import torch, lightning_ex2 as lx
    >>> mixture = lx.targets.GaussianMixture.grid(k=3)
    >>> isir = lx.kernels.ISIR(lx.proposals.GaussianProposal(2, scale=5.0), n_particles=10)
    >>> state, info, particles = isir.explore(isir.init(torch.zeros(4, 2), mixture), mixture)
    >>> info.particle_ess.shape, particles.x.shape
    (torch.Size([4]), torch.Size([4, 10, 2]))
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lightning_ex2.kernels.base import (
    ChainState,
    Gen,
    KernelBase,
    check_start,
    count_nonfinite,
    finite_or_neg_inf,
    log_prob_only,
    rand,
    randn,
)
from lightning_ex2.protocols import Proposal, StandardizableProposal
from lightning_ex2.types import ISIRInfo, Particles


class ISIR(KernelBase):
    """i-SIR with a global proposal (``GaussianProposal``, ``FlowProposal``, ...).

    Args:
        proposal: module with ``sample_and_log_prob(shape, generator)`` and
            ``log_prob(x)`` (and ``standardize``/``unstandardize`` when
            ``correlation > 0``).
        n_particles: ``N >= 2``, particles per chain including the current point.
        correlation: ``rho`` in ``[0, 1)`` of the dependent proposals; 0 = independent.
        correlation_prob: probability that a particle is correlated (``rho_i = rho``).
    """

    is_global = True

    def __init__(
        self,
        proposal: nn.Module,
        n_particles: int = 10,
        correlation: float = 0.0,
        correlation_prob: float = 1.0,
    ) -> None:
        super().__init__()
        if int(n_particles) != n_particles or n_particles < 2:
            raise ValueError(f"`n_particles` must be an integer >= 2, got {n_particles!r}")
        if not 0.0 <= correlation < 1.0:
            raise ValueError(f"`correlation` must lie in [0, 1), got {correlation!r}")
        if not 0.0 <= correlation_prob <= 1.0:
            raise ValueError(f"`correlation_prob` must lie in [0, 1], got {correlation_prob!r}")
        if not isinstance(proposal, Proposal):
            raise TypeError(
                f"`proposal` ({type(proposal).__name__}) is not a Proposal: it needs `dim`, "
                "`sample_and_log_prob(shape, generator)` and `log_prob(x)`"
            )
        if correlation > 0 and not isinstance(proposal, StandardizableProposal):
            raise TypeError(
                f"`correlation > 0` needs a proposal with `standardize`/`unstandardize`; "
                f"{type(proposal).__name__} has none"
            )
        self.proposal = proposal
        self.n_particles = int(n_particles)
        self.correlation = float(correlation)
        self.correlation_prob = float(correlation_prob)

    def extra_repr(self) -> str:
        return (
            f"n_particles={self.n_particles}, correlation={self.correlation}, "
            f"correlation_prob={self.correlation_prob}"
        )

    def init(self, x: Tensor, target: nn.Module) -> ChainState:
        log_prob = log_prob_only(target, x)
        check_start(x, log_prob)
        return ChainState(x.detach(), log_prob)

    def initial_points(self, n_chains, dim, generator, device, dtype):  # type: ignore[no-untyped-def]
        with torch.no_grad():
            return self.proposal.sample_and_log_prob((n_chains,), generator)[0].detach()

    def _fresh(self, x: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """``N - 1`` fresh particles per chain: ``([C, N-1, D], log q [C, N-1])``."""
        n_chains, n_fresh = x.shape[0], self.n_particles - 1
        if self.correlation == 0.0:
            return self.proposal.sample_and_log_prob((n_chains, n_fresh), generator)
        rho = torch.full((n_chains, self.n_particles), self.correlation, device=x.device)
        rho = rho.to(x.dtype)
        if self.correlation_prob < 1.0:
            keep = rand((n_chains, self.n_particles), x, generator) < self.correlation_prob
            rho = torch.where(keep, rho, torch.zeros_like(rho))
        rho = rho.unsqueeze(-1)  # [C, N, 1]
        z = self.proposal.standardize(x)  # [C, D]
        xi = randn((n_chains, self.n_particles, x.shape[-1]), x, generator)
        u = rho[:, 0] * z + (1 - rho[:, 0].square()).sqrt() * xi[:, 0]
        z_fresh = rho[:, 1:] * u.unsqueeze(1) + (1 - rho[:, 1:].square()).sqrt() * xi[:, 1:]
        return self.proposal.unstandardize(z_fresh)

    @torch.no_grad()
    def _move(
        self, state: ChainState, target: nn.Module, generator: torch.Generator | None
    ) -> tuple[ChainState, ISIRInfo, Tensor, Particles]:
        """The i-SIR move (Alg. 1). Returns the new state, info, the fresh particles
        ``[C, N-1, D]`` and the particle system with ``x`` left empty (assembling the
        ``[C, N, D]`` array costs a copy the size of the draws; only FlEx2MCMC needs it).
        """
        x, log_prob = state.x, state.log_prob
        n_chains, dim = x.shape
        fresh, log_q_fresh = self._fresh(x, generator)
        log_pi_fresh = target.log_prob(fresh.reshape(-1, dim)).reshape(n_chains, -1)
        log_pi = torch.cat([log_prob.unsqueeze(1), log_pi_fresh], dim=1)
        log_q = torch.cat([self.proposal.log_prob(x).unsqueeze(1), log_q_fresh], dim=1)
        log_w = finite_or_neg_inf(log_pi - log_q)
        u = rand(tuple(log_w.shape), log_w, generator).clamp_min(torch.finfo(log_w.dtype).tiny)
        index = torch.argmax(log_w - (-u.log()).log(), dim=1)  # Gumbel-max = categorical(w)
        picked = fresh.gather(1, (index - 1).clamp_min(0).view(-1, 1, 1).expand(-1, 1, dim))
        new_x = torch.where((index == 0).unsqueeze(-1), x, picked.squeeze(1))
        new_log_prob = log_pi.gather(1, index.view(-1, 1)).squeeze(1)
        weights = torch.softmax(log_w, dim=1)
        info = ISIRInfo(
            accept_global=1.0 - weights[:, 0],
            particle_ess=1.0 / (weights.square().sum(1) * self.n_particles),
            nonfinite=count_nonfinite(log_pi_fresh, torch.isfinite(log_q_fresh)),
        )
        # The point moved: any cached gradient is stale, drop it (the reference kept it).
        new_state = state._replace(x=new_x, log_prob=new_log_prob, grad=None)
        return new_state, info, fresh, Particles(x.new_empty(0), log_pi, log_q, log_w, index)

    def explore(
        self, state: ChainState, target: nn.Module, generator: Gen = None
    ) -> tuple[ChainState, ISIRInfo, Particles]:
        """One i-SIR move with its particle system (``x [C, N, D]`` included)."""
        new_state, info, fresh, particles = self._move(state, target, generator)
        x = torch.cat([state.x.unsqueeze(1), fresh], dim=1)
        return new_state, info, particles._replace(x=x)

    def step_with_particles(
        self, state: ChainState, target: nn.Module, generator: Gen = None, params: Any = None
    ) -> tuple[ChainState, ISIRInfo, Particles]:
        """One i-SIR move; also returns the particle system (FlEx2MCMC trains on it).

        ``params`` is accepted for the uniform signature; i-SIR has none.
        """
        return self.explore(state, target, generator)

    def step(
        self, state: ChainState, target: nn.Module, generator: Gen = None, params: Any = None
    ) -> tuple[ChainState, ISIRInfo]:
        """One i-SIR move (the same draws as :meth:`explore`)."""
        new_state, info, _, _ = self._move(state, target, generator)
        return new_state, info
