"""The contracts between layers, in one place: ``Target``, ``Proposal``, ``Kernel``.

They are :class:`typing.Protocol` s: a user's class satisfies one by having the
members, no base class needed, and the run-time checks (:func:`lightning_ex2.sample`,
the modules, ``Ex2MCMC(local_kernel=...)``) test these protocols, not a base class.
Optional capabilities of kernels are explicit members with a default on the built-in
base classes (:class:`~lightning_ex2.kernels.base.KernelBase`: ``step_size_adaptable``,
``is_global``, ...), never probed with ``hasattr``; a target's optional hooks
(``sample``, ``log_prob_and_grad``, ...) are read through :func:`target_hook` only.
This module imports only :mod:`lightning_ex2.types`, never an algorithm.

Shapes: ``C`` chains, ``D`` the event dimension, ``N`` i-SIR particles per chain.

Example:
    >>> import torch, lightning_ex2 as lx
    >>> isinstance(lx.targets.Gaussian(torch.zeros(2), torch.eye(2)), Target)
    True
    >>> isinstance(lx.proposals.GaussianProposal(2), Proposal)
    True
    >>> isir = lx.ISIR(lx.proposals.GaussianProposal(2))
    >>> isinstance(lx.MALA(0.1), Kernel), isinstance(isir, GlobalKernel), isir.is_global
    (True, True, True)
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor

from lightning_ex2.types import ChainState, Gen, ISIRInfo, Particles


@runtime_checkable
class Target(Protocol):
    """What to sample: ``log pi`` up to a constant, batched over leading axes. The one
    definition of a target; :class:`lightning_ex2.targets.base.TargetBase` is a convenience
    base class of it (the built-in targets), and any object with these members is one.

    Required:

    * ``dim``: an ``int >= 1``, the event dimension ``D``;
    * ``log_prob(x [..., D]) -> [...]`` in ``x``'s dtype, differentiable in ``x`` for
      gradient kernels. NaN or ``+inf`` values are bugs of the target: kernels reject
      such points and count them (``info.nonfinite``); ``-inf`` means "outside the
      support" and is legitimate.

    Optional hooks (:data:`TARGET_HOOKS`), read only through :func:`target_hook`:

    * ``sample(n, generator=None) -> [n, D]``: exact draws, only to evaluate samplers
      (reference draws of the diagnostics and of ``summary.json``);
    * ``log_prob_and_grad(x [..., D]) -> (log pi [...], grad [..., D])``: a closed-form
      gradient; gradient kernels then skip autograd
      (:func:`lightning_ex2.kernels.base.log_prob_and_grad`);
    * ``constrain(x [..., D]) -> {name: [..., *shape]}``: named constrained values, stored
      as the ``posterior`` of ``samples.nc`` (the posteriordb ports, ``PyroModel``);
    * ``dim_names``: ``D`` names of the coordinates, the ``dim`` coordinate of ``samples.nc``.
    """

    dim: int

    def log_prob(self, x: Tensor) -> Tensor: ...


#: The optional members of a :class:`Target` (methods, except the attribute ``dim_names``).
TARGET_HOOKS = ("sample", "log_prob_and_grad", "constrain", "dim_names")


def target_hook(target: object, name: str) -> Any:
    """The optional member ``name`` (one of :data:`TARGET_HOOKS`) of ``target``, or ``None``
    where it has none (a method hook that is not callable counts as none).

    Example:
        >>> class Flat:
        ...     dim = 1
        ...     def log_prob(self, x):
        ...         return x.sum(-1) * 0
        >>> target_hook(Flat(), "sample") is None, target_hook(Flat(), "dim_names") is None
        (True, True)
    """
    if name not in TARGET_HOOKS:
        raise ValueError(f"{name!r} is not a target hook; the hooks are {TARGET_HOOKS}")
    member = getattr(target, name, None)
    return member if name == "dim_names" or callable(member) else None


@runtime_checkable
class ImageTarget(Target, Protocol):
    """A target on a generator's latent space: ``decode(z [n, D]) -> images [n, C, H, W]``
    in ``[-1, 1]`` (image metrics and trajectory figures use it)."""

    def decode(self, z: Tensor) -> Tensor: ...


@runtime_checkable
class GANTarget(ImageTarget, Protocol):
    """An :class:`ImageTarget` with the discriminator's logit ``d(G(z)) [n]`` (DDLS energy)."""

    def discriminator_logit(self, z: Tensor) -> Tensor: ...


@runtime_checkable
class Proposal(Protocol):
    """A global proposal ``q`` of i-SIR.

    ``sample_and_log_prob(shape, generator) -> (x [*shape, D], log q [*shape])`` in one
    pass; ``log_prob(x [..., D]) -> [...]``. Dependent proposals (``correlation > 0``)
    also need ``standardize(x) -> z`` and ``unstandardize(z) -> (x, log q)``, a map
    to the space where ``q = N(0, I)``. It is trainable (FlEx2MCMC) iff it has
    parameters with ``requires_grad``.
    """

    dim: int

    def sample_and_log_prob(
        self, shape: tuple[int, ...], generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]: ...

    def log_prob(self, x: Tensor) -> Tensor: ...


@runtime_checkable
class StandardizableProposal(Proposal, Protocol):
    """A proposal for dependent i-SIR particles: a map to where ``q = N(0, I)``."""

    def standardize(self, x: Tensor) -> Tensor: ...

    def unstandardize(self, z: Tensor) -> tuple[Tensor, Tensor]: ...


@runtime_checkable
class Kernel(Protocol):
    """How to move: pure functions of their inputs, no chain state inside.

    * ``init(x [C, D], target) -> ChainState`` (log-density, gradient cached);
    * ``init_params(n_chains, like [C, D]) -> params``: the kernel's NamedTuple of tuned
      parameters (e.g. ``MALAParams(step_size, inverse_mass_matrix)``), or ``None``;
    * ``step(state, target, generator=None, params=None) -> (ChainState, info)``:
      ``info`` a NamedTuple of per-chain ``[C]`` tensors, among them ``nonfinite``
      (NaN/``+inf`` log-densities met by this step). ``params`` is what
      ``init_params`` returned, as the warm-up adapted it; ``None`` means the kernel's
      configured values.

    Capabilities (plain attributes):

    * ``uses_grad``: the state caches ``grad log pi``;
    * ``step_size``: initial step size, ``None`` for kernels without one;
    * ``step_size_adaptable``: the warm-up may adapt ``step_size`` toward
      ``target_accept`` from ``info.accept_local`` (see :class:`~lightning_ex2.
      kernels.adaptation.Warmup`); ``per_chain_step_size`` chooses ``[C]`` over ``[]``;
    * ``mass_matrix``: ``"identity"``, ``"diagonal"``, ``"dense"`` or ``"auto"``
      (dense up to 100 dimensions; ``params.inverse_mass_matrix``, adapted during warm-up);
    * ``is_global``: the kernel also satisfies :class:`GlobalKernel`.
    """

    uses_grad: bool
    step_size: float | None
    target_accept: float | None
    per_chain_step_size: bool
    step_size_adaptable: bool
    mass_matrix: str
    is_global: bool

    def init(self, x: Tensor, target: Target) -> ChainState: ...

    def init_params(self, n_chains: int, like: Tensor) -> NamedTuple | None: ...

    def step(
        self,
        state: ChainState,
        target: Target,
        generator: torch.Generator | None = None,
        params: Any = None,
    ) -> tuple[ChainState, NamedTuple]: ...

    def initial_points(
        self, n_chains: int, dim: int, generator: Gen, device: torch.device, dtype: torch.dtype
    ) -> Tensor:
        """Default start ``[n_chains, dim]`` (e.g. ``N(0, I)``, or the proposal's draws)."""
        ...


@runtime_checkable
class LocalKernel(Kernel, Protocol):
    """A gradient kernel (ULA, MALA, HMC): info has ``accept_local [C]``."""


@runtime_checkable
class GlobalKernel(Kernel, Protocol):
    """A kernel with an i-SIR move (ISIR, Ex2MCMC).

    ``explore`` is the i-SIR move alone with its particle system (evaluation of
    the proposal); ``step_with_particles`` is the whole step plus the particle
    system (FlEx2MCMC trains its flow on it).
    """

    proposal: Proposal
    n_particles: int

    def explore(
        self, state: ChainState, target: Target, generator: torch.Generator | None = None
    ) -> tuple[ChainState, ISIRInfo, Particles]: ...

    def step_with_particles(
        self,
        state: ChainState,
        target: Target,
        generator: torch.Generator | None = None,
        params: Any = None,
    ) -> tuple[ChainState, NamedTuple, Particles]: ...
