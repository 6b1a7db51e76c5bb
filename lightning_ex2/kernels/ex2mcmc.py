"""Ex2MCMC: one i-SIR step (explore) then ``k`` MALA steps (exploit).

Samsonov et al. 2022, Alg. 2. Built from :class:`ISIR` and :class:`MALA`;
after the i-SIR move the log-density and gradient are recomputed at the new
points in one batched call of ``C`` evaluations, so MALA never uses a stale
gradient (the reference implementation's bug). With a normalizing-flow proposal
trained while sampling this is FlEx2MCMC (Alg. 3; see ``modules/``).

Example:
    >>> import torch, lightning_ex2 as lx
    >>> target = lx.targets.Gaussian(torch.zeros(2), torch.eye(2))
    >>> q = lx.proposals.GaussianProposal(2, scale=2.0)
    >>> kernel = lx.kernels.Ex2MCMC(q, n_particles=10, step_size=0.5, n_local_steps=2)
    >>> state, info = kernel.step(kernel.init(torch.zeros(4, 2), target), target)
    >>> sorted(info._fields)
    ['accept_global', 'accept_local', 'nonfinite', 'particle_ess']
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from lightning_ex2.kernels.base import ChainState, Gen, Kernel, Step, log_prob_and_grad
from lightning_ex2.kernels.isir import ISIR, ISIRInfo, Particles
from lightning_ex2.kernels.mala import MALA


class Ex2Info(NamedTuple):
    """Per-chain ``[C]`` diagnostics of an Ex2MCMC step (``n_local_steps >= 1``;
    with ``n_local_steps = 0`` a step reports :class:`ISIRInfo`: no local field)."""

    accept_global: Tensor  # i-SIR probability of leaving the current point
    accept_local: Tensor  # mean MALA acceptance probability over the local steps
    particle_ess: Tensor  # i-SIR importance-weight ESS / N
    nonfinite: Tensor  # NaN/+inf log-densities met (fresh particles and MALA proposals)


class Ex2MCMC(Kernel):
    """Explore-exploit kernel: i-SIR with ``proposal`` + ``n_local_steps`` MALA steps.

    Args:
        proposal: global proposal (see :class:`ISIR`).
        n_particles: i-SIR particles per chain ``N`` (current point included).
        step_size: MALA step size ``h``.
        n_local_steps: MALA steps after each i-SIR step (``k >= 0``).
        target_accept: MALA acceptance the warm-up adapts ``h`` toward; ``None`` = fixed.
        correlation, correlation_prob: i-SIR dependent proposals (see :class:`ISIR`).
        per_chain_step_size: adapt one MALA step size per chain.
    """

    uses_grad = True
    is_global = True

    def __init__(
        self,
        proposal: nn.Module,
        n_particles: int = 10,
        step_size: float = 0.1,
        n_local_steps: int = 1,
        target_accept: float | None = None,
        correlation: float = 0.0,
        correlation_prob: float = 1.0,
        per_chain_step_size: bool = False,
    ) -> None:
        super().__init__()
        if int(n_local_steps) != n_local_steps or n_local_steps < 0:
            raise ValueError(
                f"`n_local_steps` must be a non-negative integer, got {n_local_steps!r}"
            )
        self.isir = ISIR(proposal, n_particles, correlation, correlation_prob)
        self.mala = MALA(step_size, target_accept, per_chain_step_size)
        self.n_local_steps = int(n_local_steps)
        self.n_particles = self.isir.n_particles
        self.step_size = self.mala.step_size
        self.target_accept = self.mala.target_accept
        self.per_chain_step_size = self.mala.per_chain_step_size
        self.step_size_adaptable = self.n_local_steps > 0

    @property
    def proposal(self) -> nn.Module:
        return self.isir.proposal

    def extra_repr(self) -> str:
        return f"n_local_steps={self.n_local_steps}"

    def init(self, x: Tensor, target: nn.Module) -> ChainState:
        return self.mala.init(x, target)

    def initial_points(self, n_chains, dim, generator, device, dtype):  # type: ignore[no-untyped-def]
        return self.isir.initial_points(n_chains, dim, generator, device, dtype)

    def explore(
        self, state: ChainState, target: nn.Module, generator: Gen = None
    ) -> tuple[ChainState, ISIRInfo, Particles]:
        """The i-SIR move alone, with its particle system."""
        return self.isir.explore(state, target, generator)

    def step_with_particles(
        self, state: ChainState, target: nn.Module, generator: Gen = None, step_size: Step = None
    ) -> tuple[ChainState, Ex2Info | ISIRInfo, Particles]:
        """One Ex2MCMC step; also returns the i-SIR particle system."""
        moved_state, isir_info, particles = self.isir.explore(state, target, generator)
        new_state, info = self._local(moved_state, isir_info, target, generator, step_size)
        return new_state, info, particles

    def _local(
        self,
        moved_state: ChainState,
        isir_info: ISIRInfo,
        target: nn.Module,
        generator: torch.Generator | None,
        step_size: Tensor | None,
    ) -> tuple[ChainState, Ex2Info | ISIRInfo]:
        """The exploit half: fresh ``log pi``/gradient at the i-SIR output, then MALA."""
        # Recompute log pi and its gradient at the (possibly) new points: C evaluations.
        log_prob, grad = log_prob_and_grad(target, moved_state.x)
        new_state = moved_state._replace(log_prob=log_prob, grad=grad)
        if not self.n_local_steps:
            return new_state, isir_info
        accept_local = torch.zeros_like(log_prob)
        nonfinite = isir_info.nonfinite
        for _ in range(self.n_local_steps):
            new_state, local_info = self.mala.step(new_state, target, generator, step_size)
            accept_local = accept_local + local_info.accept_local
            nonfinite = nonfinite + local_info.nonfinite
        accept_local = accept_local / self.n_local_steps
        info = Ex2Info(isir_info.accept_global, accept_local, isir_info.particle_ess, nonfinite)
        return new_state, info

    def step(
        self, state: ChainState, target: nn.Module, generator: Gen = None, step_size: Step = None
    ) -> tuple[ChainState, Ex2Info | ISIRInfo]:
        # i-SIR's fast path (no [C, N, D] particle array); same draws as step_with_particles.
        moved_state, isir_info = self.isir.step(state, target, generator)
        return self._local(moved_state, isir_info, target, generator, step_size)
