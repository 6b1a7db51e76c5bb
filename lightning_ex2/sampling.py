"""The Python API: ``lightning_ex2.sample(target, kernel, ...) -> Run``.

Example:
    >>> import torch, lightning_ex2 as lx
    >>> target = lx.targets.GridMixture(k=5)  # 25 modes in 2-D
    >>> kernel = lx.kernels.Ex2MCMC(lx.proposals.GaussianProposal(2, scale=8.0),
    ...                             n_particles=50, step_size=0.5, n_local_steps=3)
    >>> run = lx.sample(target, kernel, n_chains=16, n_steps=500, burn_in=50, seed=0,
    ...                 progress=False)
    >>> run.samples.shape  # (chain, draw, dim), ArviZ order
    torch.Size([16, 500, 2])
    >>> run.summary()["converged"]
    True
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from lightning_ex2 import interrupt
from lightning_ex2.environment import ensure_writable_caches
from lightning_ex2.kernels.adaptation import Tuning, Warmup
from lightning_ex2.kernels.base import COUNT_FIELDS
from lightning_ex2.proposals.training import FlowTraining, proposal_trainer
from lightning_ex2.protocols import Kernel
from lightning_ex2.random import make_generator
from lightning_ex2.targets.base import check_target, target_dim
from lightning_ex2.types import ChainState
from lightning_ex2.validation import check_int, check_memory

#: seeds ``torch.Generator.manual_seed`` accepts
SEED_RANGE = (-(2**63), 2**64)


@dataclass
class Run:
    """Result of :func:`sample`.

    Attributes:
        samples: draws after burn-in, ``[C, T, D]`` on the chains' device, where
            ``T = n_steps // thin`` (fewer when the run was interrupted).
        log_prob: ``log pi`` of the draws, ``[C, T]``.
        info: per-chain ``[C]`` tensors: the means over the post-burn-in steps of
            the kernel's info (``accept_local``, ``accept_global``, ``particle_ess``),
            ``nonfinite`` (the count of NaN/+inf log-densities met over the whole run,
            burn-in included), and the final ``step_size`` for kernels that have one.
        state: the final :class:`ChainState` (continue with ``kernel.step``).
        tuning: the final (frozen) :class:`~lightning_ex2.kernels.Tuning`: the kernel's
            parameters (``tuning.params``, e.g. ``MALAParams(step_size,
            inverse_mass_matrix)``) and their adaptation state; ``None`` for kernels
            without parameters. See also :attr:`params` and :attr:`step_size`.
        wall_seconds: wall time of burn-in + sampling.
        complete: ``False`` when a stop was requested
            (:mod:`lightning_ex2.interrupt`) before the last step.
        draw_info: per-draw ``[C, T]`` tensors, ArviZ's ``sample_stats``: the info of
            the step that made each draw (``accept_global``, ``accept_local``,
            ``particle_ess``; ``nonfinite`` summed over the ``thin`` steps since the
            previous draw) and the ``step_size`` for kernels that have one.
        meta: ``kernel``, ``target``, ``seed``, ``superchains`` (chains that started
            at the same point share an id; ``None`` when all starts differ) and
            ``proposal_updates`` (the flow updates made in burn-in, FlEx2MCMC; else ``None``).
        target: the sampled target (:meth:`to_arviz` reads its named constrained values).
    """

    samples: Tensor
    log_prob: Tensor
    info: dict[str, Tensor]
    state: ChainState
    wall_seconds: float
    n_steps: int
    burn_in: int
    thin: int
    tuning: Tuning | None = None
    complete: bool = True
    meta: dict = field(default_factory=dict)
    draw_info: dict[str, Tensor] = field(default_factory=dict)
    target: Any = field(default=None, repr=False, compare=False)

    @property
    def params(self) -> NamedTuple | None:
        """The kernel's frozen parameters (pass them to ``kernel.step`` to continue)."""
        return None if self.tuning is None else self.tuning.params

    @property
    def step_size(self) -> Tensor | None:
        """The step size the draws were made with, ``[C]`` (``None`` without one); the
        same for every post-burn-in draw (frozen)."""
        if self.tuning is None:
            return None
        return self.tuning.params.step_size.expand(self.samples.shape[0])

    def numpy(self) -> np.ndarray:
        """Draws as a float64 NumPy array ``(chain, draw, dim)``."""
        return self.samples.detach().cpu().double().numpy()

    def ess(self) -> np.ndarray:
        """Multi-chain ESS per coordinate ``(dim,)``."""
        from lightning_ex2.diagnostics import ess

        return ess(self.numpy())

    def rhat(self) -> np.ndarray:
        """Split R-hat per coordinate ``(dim,)``."""
        from lightning_ex2.diagnostics import rhat

        return rhat(self.numpy())

    def to_arviz(self):  # type: ignore[no-untyped-def]
        """The draws as ArviZ data: groups ``posterior`` (``x`` ``(chain, draw, dim)``)
        and ``sample_stats`` (``lp`` and :attr:`draw_info` per draw). When the
        :attr:`target` has named constrained values (``constrain``: the posteriordb
        ports, :class:`~lightning_ex2.targets.PyroModel`), ``posterior`` holds those
        (``theta`` ``(chain, draw, theta_dim_0)``, ...) and ``x`` is in
        ``unconstrained_posterior``.

        Returns an ``arviz.InferenceData`` with ArviZ < 1, an ``xarray.DataTree`` with
        ArviZ >= 1 (what ``arviz.from_netcdf`` gives for the ``samples.nc`` of the
        ``sample`` command, the same layout).
        """
        from lightning_ex2.output.netcdf import build_groups, constrained_draws, to_arviz

        named = constrained_draws(self.target, self.samples)
        groups = build_groups(
            self.samples, self.log_prob, self.draw_info, self.meta, constrained=named
        )
        return to_arviz(groups)

    def summary(self) -> dict:
        """ArviZ's diagnostics and the convergence verdict of the draws, as in
        ``summary.json`` (:func:`lightning_ex2.diagnostics.summary.diagnostics`)."""
        from lightning_ex2.diagnostics.summary import diagnostics

        return diagnostics(self.numpy(), superchains=self.meta.get("superchains"))


class Chains(NamedTuple):
    """What :func:`run_chains` returns (``T`` draws kept, ``C`` chains)."""

    state: ChainState  # the final state
    tuning: Tuning | None  # the final tuning (frozen after an adapting burn-in)
    samples: Tensor  # [C, T, D]
    log_prob: Tensor  # [C, T]
    info: dict[str, Tensor]  # per-chain [C]: means of the info over the sampling steps,
    #                          totals of the count fields (nonfinite) over all steps
    complete: bool  # False when interrupted
    draw_info: dict[str, Tensor] = {}  # per draw [C, T]: see run_chains  # noqa: RUF012


def summarize_info(sums: dict[str, Tensor], n_steps: int) -> dict[str, Tensor]:
    """Per-chain means of the info rates, totals of its counts (``COUNT_FIELDS``)."""
    return {k: v if k in COUNT_FIELDS else v / max(n_steps, 1) for k, v in sums.items()}


def warn_nonfinite(nonfinite: Tensor | None, where: str, target: Any = None) -> None:
    """One warning when any NaN/+inf log-density was met (one host sync; end of a run).

    With ``target``, the warning points at its ``log_prob`` (file and line), where the
    fix belongs; else at the caller's caller.
    """
    if nonfinite is None:
        return
    total = int(nonfinite.sum())
    if total:
        chains = int((nonfinite > 0).sum())
        name = "target" if target is None else type(target).__name__
        message = (
            f"{where}: {name}.log_prob returned NaN or +inf {total} times (in {chains} of "
            f"{nonfinite.numel()} chains); those points were rejected, so the chains never "
            "visit that region: check the target's log_prob there"
        )
        source = _source_of(getattr(type(target), "log_prob", None)) if target is not None else None
        if source is None:
            warnings.warn(message, RuntimeWarning, stacklevel=3)
        else:
            warnings.warn_explicit(message, RuntimeWarning, *source)


#: a chain that accepts fewer than this fraction of its moves after warm-up is stuck
STUCK_ACCEPT = 0.01


def stuck_chains(info: dict[str, Tensor]) -> Tensor | None:
    """``[C]`` bool: chains whose mean acceptance after warm-up (the larger of
    ``accept_local`` and ``accept_global``) is below :data:`STUCK_ACCEPT`; ``None``
    when the info has no acceptance."""
    rates = [info[k] for k in ("accept_local", "accept_global") if k in info]
    if not rates:
        return None
    moved = rates[0] if len(rates) == 1 else torch.maximum(rates[0], rates[1])
    return moved < STUCK_ACCEPT


def stuck_message(info: dict[str, Tensor], where: str, index: Tensor | None = None) -> str | None:
    """The one-line report of :func:`stuck_chains` (``None`` when none is stuck; one
    host sync). ``index`` maps the rows of ``info`` to chain numbers."""
    stuck = stuck_chains(info)
    if stuck is None or not bool(stuck.any()):
        return None
    rows = torch.nonzero(stuck).flatten()
    rates = [info[k] for k in ("accept_local", "accept_global") if k in info]
    moved = rates[0] if len(rates) == 1 else torch.maximum(rates[0], rates[1])
    shown = rows[:10]
    acc = ", ".join(f"{float(a):.3f}" for a in moved[shown].tolist())
    ids = ", ".join(map(str, (shown if index is None else index[shown]).tolist()))
    more = ", ..." if rows.numel() > 10 else ""
    return (
        f"{where}: {rows.numel()} of {stuck.numel()} chains accepted < "
        f"{100 * STUCK_ACCEPT:g} % of moves after warm-up (acceptance {acc}{more}; chains "
        f"{ids}{more}): they stayed near where they were, so their draws are "
        "not draws from the target; sample with a longer burn_in (lost chains are re-started "
        "from healthy ones during warm-up), start them elsewhere, or check the target there"
    )


def warn_stuck(info: dict[str, Tensor], where: str, stacklevel: int = 3) -> None:
    """One ``RuntimeWarning`` naming the chains stuck after warm-up (see
    :func:`stuck_message`); ``run.info`` keeps every chain's acceptance."""
    message = stuck_message(info, where)
    if message is not None:
        warnings.warn(message, RuntimeWarning, stacklevel=stacklevel)


def _source_of(fn: Any) -> tuple[str, int] | None:
    """``(file, line)`` of a Python function, else ``None``."""
    import inspect

    try:
        lines = inspect.getsourcelines(fn)
        return inspect.getsourcefile(fn) or "<unknown>", lines[1]
    except (TypeError, OSError):
        return None


def run_chains(
    kernel: Kernel,
    target: nn.Module,
    state: ChainState,
    generator: torch.Generator | None,
    *,
    n_steps: int,
    tuning: Tuning | None = None,
    burn_in: int = 0,
    thin: int = 1,
    adapt: bool = True,
    progress: bool = True,
    desc: str | None = None,
    burn_in_step: Callable[..., tuple[ChainState, Any]] | None = None,
) -> Chains:
    """The step loop shared by :func:`sample` and ``lightning-ex2 sample``.

    ``burn_in`` steps (with ``adapt``: warm-up, the parameters adapt -- step size,
    diagonal mass matrix over windows placed in those ``burn_in`` steps -- then
    :meth:`Warmup.freeze`; draws discarded), then ``n_steps`` steps with the tuning
    fixed, keeping every ``thin``-th draw in a preallocated buffer on the chains'
    device; nothing is copied to the host inside the loop. ``draw_info`` holds, per
    kept draw ``[C, T]``, the info of the step that made it (ArviZ's ``sample_stats``;
    count fields summed over the ``thin`` steps since the previous draw) and the
    ``step_size`` it used (see :func:`step_size_of`). After each step the loop
    polls :func:`lightning_ex2.interrupt.requested` (a Python read) and stops early
    when a stop was requested, keeping the draws completed (``complete=False``).
    ``burn_in_step`` replaces ``kernel.step`` in the burn-in (same signature), e.g.
    :meth:`~lightning_ex2.proposals.training.FlowTrainer.step`: a move + a flow update.
    """
    warmup = Warmup(kernel, n_warmup=burn_in)
    burn_in_step = kernel.step if burn_in_step is None else burn_in_step
    n_chains, dim = state.x.shape
    n_draws = n_steps // thin
    draws = state.x.new_empty((n_draws, n_chains, dim))
    draws_log_prob = state.x.new_empty((n_draws, n_chains))
    sums: dict[str, Tensor] = {}
    per_draw: dict[str, Tensor] = {}  # [T, C] buffers, made at the first sampling step
    nonfinite: Tensor | None = None
    done = 0
    stopped = False
    with tqdm(total=burn_in + n_steps, disable=not progress, dynamic_ncols=True,
              desc=desc or type(kernel).__name__) as bar:  # fmt: skip
        for _ in range(burn_in):
            state, info = burn_in_step(state, target, generator, Warmup.params(tuning))
            nonfinite = info.nonfinite if nonfinite is None else nonfinite + info.nonfinite
            if adapt:  # adapt, and re-start lost chains from healthy ones at the checks
                tuning, state = warmup.step(tuning, info, state)
            bar.update()
            if interrupt.requested():
                stopped = True
                break
        if adapt:
            tuning = warmup.freeze(tuning)
        for t in range(0 if stopped else n_steps):
            state, info = kernel.step(state, target, generator, Warmup.params(tuning))
            for name, value in info._asdict().items():
                sums[name] = sums[name] + value if name in sums else value.clone()
                if name not in per_draw:
                    per_draw[name] = draws_log_prob.new_zeros((n_draws, n_chains))
                if name in COUNT_FIELDS:
                    if t // thin < n_draws:  # steps after the last kept draw: in info only
                        per_draw[name][t // thin] += value
                elif (t + 1) % thin == 0:
                    per_draw[name][t // thin] = value
            if (t + 1) % thin == 0:
                draws[t // thin] = state.x
                draws_log_prob[t // thin] = state.log_prob
            done = t + 1
            bar.update()
            if interrupt.requested() and done < n_steps:
                stopped = True
                break
    info = summarize_info(sums, done)
    if nonfinite is not None:
        info["nonfinite"] = info["nonfinite"] + nonfinite if "nonfinite" in info else nonfinite
    kept = done // thin
    draw_info = {k: v[:kept].transpose(0, 1) for k, v in per_draw.items()}
    step = step_size_of(tuning)
    if step is not None:
        draw_info["step_size"] = step.to(draws_log_prob).expand(kept, n_chains).transpose(0, 1)
    return Chains(
        state,
        tuning,
        draws[:kept].transpose(0, 1),
        draws_log_prob[:kept].transpose(0, 1),
        info,
        not stopped,
        draw_info,
    )


def step_size_of(tuning: Tuning | None) -> Tensor | None:
    """The step size a (frozen) tuning gives the kernel, ``[]`` or ``[C]``; ``None`` if none.

    The one place the output set reads the step size from (``summary.json``'s
    ``step_size``, ``samples.nc``'s ``sample_stats.step_size``).
    """
    return Warmup.step_size(tuning)


def floating_dtype(target: nn.Module) -> tuple[torch.device, torch.dtype] | None:
    """Device and dtype of the target's first floating tensor, if any.

    Through ``nn.Module``'s own methods: a target may name something else ``parameters``
    (a posteriordb port's declared parameters)."""
    if not isinstance(target, nn.Module):
        return None
    tensors = (*nn.Module.parameters(target), *nn.Module.buffers(target))
    for t in tensors:
        if t.is_floating_point():
            return t.device, t.dtype
    return None


def _check_init(init: object, n_chains: int, dim: int, target: nn.Module) -> Tensor:
    """``init`` as a floating tensor ``[n_chains, dim]`` in the target's dtype."""
    try:
        init_t = torch.as_tensor(init)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(
            f"`init` must be a tensor (or nested lists) of shape [n_chains, dim], got {err}"
        ) from None
    if init_t.ndim != 2 or init_t.shape[0] != n_chains or init_t.shape[1] != dim:
        raise ValueError(
            f"`init` must have shape [n_chains={n_chains}, dim={dim}] (the target's dim), "
            f"got {tuple(init_t.shape)}"
        )
    found = floating_dtype(target)
    if not init_t.is_floating_point():
        init_t = init_t.to(found[1] if found else torch.get_default_dtype())
    if found is not None and found[1] != init_t.dtype:
        raise ValueError(
            f"`init` is {init_t.dtype} but the target's tensors are {found[1]}: pass "
            f"init.to({found[1]}) or move the target with target.to({init_t.dtype})"
        )
    return init_t


def check_kernel_target(kernel: Kernel, dim: int, where: str = "kernel") -> None:
    """A global kernel's proposal must live in the target's dimension."""
    if kernel.is_global and int(kernel.proposal.dim) != dim:
        raise ValueError(
            f"`{where}.proposal.dim` ({kernel.proposal.dim}) != the target's dim ({dim})"
        )


def check_run(n_steps: int, burn_in: int, thin: int, prefix: str = "") -> None:
    """The run-length checks shared by :func:`sample` and the ``sample`` command."""
    check_int(n_steps, f"{prefix}n_steps", "sample", 1)
    check_int(burn_in, f"{prefix}burn_in", "sample", 0)
    check_int(thin, f"{prefix}thin", "sample", 1)
    if thin > n_steps:
        raise ValueError(
            f"sample: `{prefix}thin` ({thin}) must not exceed `{prefix}n_steps` ({n_steps}): "
            "no draw would be kept"
        )


def sample(
    target: nn.Module,
    kernel: Kernel,
    *,
    n_chains: int,
    n_steps: int,
    burn_in: int = 0,
    thin: int = 1,
    init: Tensor | None = None,
    seed: int | None = None,
    progress: bool = True,
    check_convergence: bool = True,
    train_proposal: bool | FlowTraining | None = None,
) -> Run:
    """Run ``n_chains`` chains of ``kernel`` on ``target``.

    The run is ``burn_in`` warm-up steps (adaptation of the kernel's parameters on:
    step size, and the mass matrix for ``mass_matrix="diagonal"``, ``"dense"`` or ``"auto"``;
    chains that do not move are re-started from healthy ones at the windows' ends;
    draws discarded), then the parameters are frozen (:class:`~lightning_ex2.kernels.Warmup`),
    then ``n_steps`` steps with the kernel fixed, keeping every ``thin``-th draw in
    a preallocated buffer on the chains' device. Nothing in the step loop copies to
    the host. Chains that accepted under 1 % of their moves after warm-up are named in
    one ``RuntimeWarning`` (with ``check_convergence``). A stop request (:mod:`lightning_ex2.interrupt`) ends the run early
    with the draws made so far (``Run.complete`` is then ``False``).

    FlEx2MCMC: when the kernel is global (``ISIR``, ``Ex2MCMC``) and its proposal has
    trainable parameters (a fresh :class:`~lightning_ex2.proposals.FlowProposal`), every
    burn-in step is a move followed by one update of the proposal on the move's
    particles (the loss and optimizer of the ``FlEx2MCMC`` module, see
    :mod:`lightning_ex2.proposals.training`); then the proposal is frozen
    (``requires_grad`` off, ``eval()``) and the ``n_steps`` are a fixed pi-invariant
    kernel. A frozen proposal is not retrained by a later call.

    Args:
        target: module with ``log_prob(x [..., D]) -> [...]`` and ``dim``.
        kernel: anything with the members of :class:`~lightning_ex2.protocols.Kernel`
            (no base class needed); an ``nn.Module`` is moved to the chains' device/dtype.
        n_chains: number of chains ``C``.
        n_steps: post-burn-in steps.
        burn_in: warm-up steps before them.
        thin: keep one draw in ``thin`` (``<= n_steps``).
        init: start points ``[C, D]`` (a tensor or nested lists); default: the kernel's
            proposal (global kernels) or ``N(0, I)``. Their device is the run's; their
            dtype must be the target's.
        seed: seed of the run's ``torch.Generator``; same seed, same draws.
        progress: show a progress bar.
        check_convergence: warn (``RuntimeWarning``) at the end when the draws fail
            the convergence rule of :func:`lightning_ex2.diagnostics.summary.diagnostics`
            (R-hat, bulk and tail ESS); costs one ArviZ diagnostics pass. It also
            names, in one more warning, the chains that accepted under 1 % of their
            moves after warm-up (:func:`warn_stuck`).
        train_proposal: ``None`` (default): train a trainable proposal during burn-in, as
            above (with ``burn_in=0`` a ``UserWarning`` says the proposal is used
            untrained); ``True``: the same, but a kernel without a trainable proposal or
            ``burn_in=0`` is an error; a :class:`~lightning_ex2.proposals.FlowTraining`:
            train with those settings (loss weights, optimizer); ``False``: never train
            (a ``UserWarning`` when the proposal is trainable, i.e. untrained).

    Raises:
        TypeError: ``target`` or ``kernel`` do not satisfy their protocol; a gradient
            kernel with a ``log_prob`` that autograd cannot differentiate.
        ValueError: naming the argument: counts out of range, ``thin > n_steps``,
            ``init`` of the wrong shape or dtype, a proposal of another dimension than
            the target, ``log_prob`` of the wrong shape, a non-finite start.
    """
    check_target(target)
    n_chains = check_int(n_chains, "n_chains", "sample", 1)
    check_run(n_steps, burn_in, thin)
    ensure_writable_caches()  # the summary's ArviZ, whatever $HOME is
    if not isinstance(kernel, Kernel):
        raise TypeError(
            f"`kernel` must be a lightning_ex2 Kernel (the members of "
            f"lightning_ex2.protocols.Kernel), got {type(kernel).__name__}"
        )
    if seed is not None and (
        isinstance(seed, bool)
        or not isinstance(seed, int | np.integer)
        or not SEED_RANGE[0] <= int(seed) < SEED_RANGE[1]
    ):
        raise ValueError(f"`seed` must be an integer in [-2**63, 2**64) or None, got {seed!r}")
    dim = target_dim(target)
    check_kernel_target(kernel, dim)
    found = floating_dtype(target)
    if init is None:
        device, dtype = found or (torch.device("cpu"), torch.get_default_dtype())
    else:
        init = _check_init(init, n_chains, dim, target)
        device, dtype = init.device, init.dtype
    if isinstance(kernel, nn.Module):
        kernel.to(device=device, dtype=dtype)
    flow_trainer = proposal_trainer(kernel, train_proposal, burn_in)
    generator = make_generator(device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(int(seed))
    particles = (
        next((m.n_particles for m in kernel.modules() if "n_particles" in vars(m)), None)
        if isinstance(kernel, nn.Module)
        else None
    )
    check_memory(
        n_chains, dim, "sample", particles, n_draws=n_steps // thin, itemsize=dtype.itemsize,
        names="n_chains, n_particles or n_steps", device=device,
    )  # fmt: skip
    if init is None:
        init = kernel.initial_points(n_chains, dim, generator, device, dtype)

    start = time.perf_counter()
    state = kernel.init(init.to(device=device, dtype=dtype), target)
    tuning = Warmup(kernel).init(n_chains, state.x)
    chains = run_chains(
        kernel, target, state, generator, n_steps=n_steps, tuning=tuning, burn_in=burn_in,
        thin=thin, adapt=True, progress=progress,
        burn_in_step=None if flow_trainer is None else flow_trainer.step,
    )  # fmt: skip
    if flow_trainer is not None:
        flow_trainer.freeze()  # (already, unless a stop request cut the burn-in short)
    wall = time.perf_counter() - start
    warn_nonfinite(chains.info.get("nonfinite"), "sample")
    if check_convergence:
        warn_stuck(chains.info, "sample")

    info = dict(chains.info)
    if chains.tuning is not None:
        info["step_size"] = chains.tuning.step_size.expand(n_chains).clone()
    run = Run(
        samples=chains.samples,
        log_prob=chains.log_prob,
        info=info,
        state=chains.state,
        tuning=chains.tuning,
        complete=chains.complete,
        wall_seconds=wall,
        n_steps=n_steps,
        burn_in=burn_in,
        thin=thin,
        meta={
            "kernel": type(kernel).__name__,
            "target": type(target).__name__,
            "seed": seed,
            "superchains": superchain_ids(init),
            "proposal_updates": None if flow_trainer is None else flow_trainer.n_updates,
        },
        draw_info=chains.draw_info,
        target=target,
    )
    if check_convergence:
        warn_convergence(run.summary(), "sample")
    return run


def superchain_ids(starts: Tensor) -> list[int] | None:
    """Chains that start at the same point share an id (nested R-hat's superchains).

    ``starts`` ``[C, D]``; returns ``C`` ids numbered in order of first appearance, or
    ``None`` when every chain has its own start (one host copy, before the run).
    """
    _, first, inverse = np.unique(
        starts.detach().cpu().double().numpy(), axis=0, return_index=True, return_inverse=True
    )
    inverse = inverse.reshape(-1)
    if len(first) == len(inverse):
        return None
    renumber = np.argsort(np.argsort(first))  # ids in order of first appearance
    return [int(i) for i in renumber[inverse]]


def warn_convergence(summary: dict, where: str, stacklevel: int = 3) -> None:
    """A ``RuntimeWarning`` naming the failed checks when ``summary["converged"]`` is false.

    ``stacklevel`` as in :func:`warnings.warn`, counted from the caller of this function
    (the default points at the caller's caller: the user's ``lx.sample`` line)."""
    if summary.get("converged") is False:
        warnings.warn(
            f"{where}: the chains have not converged: {'; '.join(summary['failed_checks'])} "
            f"(rule: {summary['convergence_rule']}); run longer, start the chains "
            "dispersed, or use a kernel that moves between modes",
            RuntimeWarning,
            stacklevel=stacklevel,
        )
