"""Ex2MCMC: one i-SIR step (explore) then ``k`` steps of a local kernel (exploit).

Samsonov et al. 2022, Alg. 2. Built from :class:`ISIR` and any local kernel
(:class:`MALA` by default, :class:`HMC`, :class:`ULA`, or a user's kernel with the
:class:`~lightning_ex2.protocols.Kernel` members): the composite's capabilities
(step size, its adaptation, the mass matrix, the parameters) are the local kernel's.
After the i-SIR move the log-density and gradient are recomputed at the new points
in one batched call of ``C`` evaluations, so the local kernel never uses a stale
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
    >>> hmc = lx.HMC(step_size=0.2, n_leapfrog=5, target_accept=0.65)
    >>> kernel = lx.kernels.Ex2MCMC(q, n_particles=10, local_kernel=hmc, n_local_steps=1)
    >>> kernel.step_size, kernel.target_accept
    (0.2, 0.65)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from lightning_ex2.kernels.base import ChainState, Gen, KernelBase, log_prob_and_grad
from lightning_ex2.kernels.isir import ISIR
from lightning_ex2.kernels.mala import MALA
from lightning_ex2.protocols import Kernel
from lightning_ex2.types import ISIRInfo, Particles


class Ex2Info(NamedTuple):
    """Per-chain ``[C]`` diagnostics of an Ex2MCMC step (``n_local_steps >= 1``;
    with ``n_local_steps = 0`` a step reports :class:`ISIRInfo`: no local field)."""

    accept_global: Tensor  # i-SIR probability of leaving the current point
    accept_local: Tensor  # mean local acceptance probability over the local steps
    particle_ess: Tensor  # i-SIR importance-weight ESS / N
    nonfinite: Tensor  # NaN/+inf log-densities met (fresh particles and local proposals)


class Ex2MCMC(KernelBase):
    """Explore-exploit kernel: i-SIR with ``proposal`` + ``n_local_steps`` local steps.

    Two forms: the short one builds the default local kernel,
    ``MALA(step_size, target_accept, per_chain_step_size, mass_matrix)``; the general
    one takes ``local_kernel`` (then those four belong to it and must not be given here).

    Args:
        proposal: global proposal (see :class:`ISIR`).
        n_particles: i-SIR particles per chain ``N`` (current point included).
        step_size: MALA step size ``h`` (short form; default 0.1).
        n_local_steps: local steps after each i-SIR step (``k >= 0``).
        target_accept: MALA acceptance the warm-up adapts ``h`` toward; ``None`` = fixed.
        correlation, correlation_prob: i-SIR dependent proposals (see :class:`ISIR`).
        per_chain_step_size: adapt one MALA step size per chain (short form).
        local_kernel: the exploit kernel (``MALA``, ``HMC``, ``ULA``, ...); a local kernel
            whose info has ``accept_local`` and ``nonfinite``.
        mass_matrix: MALA's ``"identity"`` (default) or ``"diagonal"`` (short form).
    """

    is_global = True

    def __init__(
        self,
        proposal: nn.Module,
        n_particles: int = 10,
        step_size: float | None = None,
        n_local_steps: int = 1,
        target_accept: float | None = None,
        correlation: float = 0.0,
        correlation_prob: float = 1.0,
        per_chain_step_size: bool | None = None,
        local_kernel: nn.Module | None = None,
        mass_matrix: str | None = None,
    ) -> None:
        super().__init__()
        if int(n_local_steps) != n_local_steps or n_local_steps < 0:
            raise ValueError(
                f"`n_local_steps` must be a non-negative integer, got {n_local_steps!r}"
            )
        short = {
            "step_size": step_size,
            "target_accept": target_accept,
            "per_chain_step_size": per_chain_step_size,
            "mass_matrix": mass_matrix,
        }
        if local_kernel is None:
            local_kernel = MALA(
                0.1 if step_size is None else step_size,
                target_accept,
                bool(per_chain_step_size),
                "identity" if mass_matrix is None else mass_matrix,
            )
        else:
            given = [k for k, v in short.items() if v is not None]
            if given:
                raise ValueError(
                    f"Ex2MCMC: `{given[0]}` belongs to `local_kernel` when one is given; "
                    f"set it there ({type(local_kernel).__name__}(..., {given[0]}=...))"
                )
            if not isinstance(local_kernel, Kernel) or local_kernel.is_global:
                raise TypeError(
                    f"`local_kernel` must be a local kernel (MALA, HMC, ULA, or one with the "
                    f"Kernel members and is_global=False), got {type(local_kernel).__name__}"
                )
        self.isir = ISIR(proposal, n_particles, correlation, correlation_prob)
        self.local_kernel = local_kernel
        self.n_local_steps = int(n_local_steps)

    # ---------------------------------------------- capabilities: the local kernel's
    @property
    def uses_grad(self) -> bool:  # type: ignore[override]
        return bool(self.local_kernel.uses_grad)

    @property
    def step_size(self) -> float | None:  # type: ignore[override]
        return self.local_kernel.step_size

    @property
    def target_accept(self) -> float | None:  # type: ignore[override]
        return self.local_kernel.target_accept

    @property
    def per_chain_step_size(self) -> bool:  # type: ignore[override]
        return bool(self.local_kernel.per_chain_step_size)

    @property
    def mass_matrix(self) -> str:  # type: ignore[override]
        return self.local_kernel.mass_matrix

    @property
    def step_size_adaptable(self) -> bool:  # type: ignore[override]
        return bool(self.local_kernel.step_size_adaptable) and self.n_local_steps > 0

    @property
    def proposal(self) -> nn.Module:
        return self.isir.proposal

    @property
    def n_particles(self) -> int:
        return self.isir.n_particles

    def extra_repr(self) -> str:
        return f"n_local_steps={self.n_local_steps}"

    def init(self, x: Tensor, target: nn.Module) -> ChainState:
        return self.local_kernel.init(x, target)

    def init_params(self, n_chains: int, like: Tensor) -> NamedTuple | None:
        """The local kernel's parameters (the i-SIR move has none)."""
        return self.local_kernel.init_params(n_chains, like)

    def initial_points(self, n_chains, dim, generator, device, dtype):  # type: ignore[no-untyped-def]
        return self.isir.initial_points(n_chains, dim, generator, device, dtype)

    def explore(
        self, state: ChainState, target: nn.Module, generator: Gen = None
    ) -> tuple[ChainState, ISIRInfo, Particles]:
        """The i-SIR move alone, with its particle system."""
        return self.isir.explore(state, target, generator)

    def step_with_particles(
        self, state: ChainState, target: nn.Module, generator: Gen = None, params: Any = None
    ) -> tuple[ChainState, Ex2Info | ISIRInfo, Particles]:
        """One Ex2MCMC step; also returns the i-SIR particle system."""
        moved_state, isir_info, particles = self.isir.explore(state, target, generator)
        new_state, info = self._local(moved_state, isir_info, target, generator, params)
        return new_state, info, particles

    def _local(
        self,
        moved_state: ChainState,
        isir_info: ISIRInfo,
        target: nn.Module,
        generator: torch.Generator | None,
        params: Any,
    ) -> tuple[ChainState, Ex2Info | ISIRInfo]:
        """The exploit half: fresh ``log pi``/gradient at the i-SIR output, then k steps."""
        new_state = moved_state
        if self.uses_grad:  # log pi and its gradient at the (possibly) new points: C evals
            log_prob, grad = log_prob_and_grad(target, moved_state.x)
            new_state = moved_state._replace(log_prob=log_prob, grad=grad)
        if not self.n_local_steps:
            return new_state, isir_info
        accept_local = torch.zeros_like(new_state.log_prob)
        nonfinite = isir_info.nonfinite
        for _ in range(self.n_local_steps):
            new_state, local_info = self.local_kernel.step(new_state, target, generator, params)
            accept_local = accept_local + local_info.accept_local
            nonfinite = nonfinite + local_info.nonfinite
        accept_local = accept_local / self.n_local_steps
        info = Ex2Info(isir_info.accept_global, accept_local, isir_info.particle_ess, nonfinite)
        return new_state, info

    def step(
        self, state: ChainState, target: nn.Module, generator: Gen = None, params: Any = None
    ) -> tuple[ChainState, Ex2Info | ISIRInfo]:
        # i-SIR's fast path (no [C, N, D] particle array); same draws as step_with_particles.
        moved_state, isir_info = self.isir.step(state, target, generator)
        return self._local(moved_state, isir_info, target, generator, params)
