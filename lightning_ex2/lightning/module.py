"""``MCMCSampler``: any kernel of :mod:`lightning_ex2.kernels` as a LightningModule.

The module orchestrates only: the kernel moves the chains, the module keeps
their state and the kernel's parameters in registered buffers (so checkpoints
carry them), logs, and adapts/freezes the parameters. ``fit`` is the warm-up
(step size, mass matrix, and for :class:`FlEx2MCMC` flow training); ``predict`` — used by the
``lightning-ex2 sample`` command — runs the frozen kernel and returns draws.

Run it with::

    lightning-ex2 fit --config configs/synthetic/funnel_d10/mala.yaml
    lightning-ex2 sample --config configs/synthetic/funnel_d10/mala.yaml --ckpt_path logs/.../last.ckpt
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from pytorch_lightning.utilities import rank_zero_warn
from torch import Tensor, nn

from lightning_ex2.kernels.adaptation import Tuning, Warmup
from lightning_ex2.kernels.base import select
from lightning_ex2.lightning.compat import (
    MoveCounter,
    SafeLoadingModule,
    attached_trainer,
    autograd_enabled,
)
from lightning_ex2.lightning.data import chain_shards, gather_rows, merge_owned_rows
from lightning_ex2.protocols import Kernel
from lightning_ex2.random import derived_seed, make_generator
from lightning_ex2.sampling import (
    check_kernel_target,
    floating_dtype,
    run_chains,
    stuck_message,
    warn_nonfinite,
)
from lightning_ex2.targets.base import check_target, target_dim
from lightning_ex2.types import ChainState, Particles
from lightning_ex2.validation import check_int, check_memory

_LOG_NAMES = {
    "accept_global": "accept/global",
    "accept_local": "accept/local",
    "particle_ess": "isir/particle_ess",
}


@dataclass
class SamplingConfig:
    """What ``predict_step`` runs (set by ``Ex2Trainer.sample``)."""

    n_steps: int = 1000
    burn_in: int = 0
    thin: int = 1
    progress: bool = True


class TupleBuffers(nn.Module):
    """The tensors of a NamedTuple (nested ones included) as buffers, field by field.

    ``TupleBuffers(ChainState(x, log_prob, grad), n_rows)`` registers buffers ``x``,
    ``log_prob``, ``grad`` (a ``None`` field is left out); as the module's child
    ``state`` they are checkpointed as ``state.x``, ... A tensor whose leading axis
    has ``n_rows`` (the chains) entries is per chain; any other (0-d, or a leading
    axis of 1 such as a ``[1, D]`` mass matrix) is shared by all chains.

    Example:
        >>> import torch
        >>> b = TupleBuffers(ChainState(torch.zeros(3, 2), torch.zeros(3)), n_rows=3)
        >>> sorted(name for name, _ in b.named_buffers())
        ['log_prob', 'x']
        >>> b.put(torch.tensor([1]), ChainState(torch.ones(1, 2), torch.ones(1)))
        >>> b.get(torch.tensor([0, 1])).x.tolist()
        [[0.0, 0.0], [1.0, 1.0]]
    """

    def __init__(self, template: NamedTuple, n_rows: int) -> None:
        super().__init__()
        self._type = type(template)
        self._names = list(template._fields)
        self._n_rows = int(n_rows)
        for name, value in template._asdict().items():
            if isinstance(value, tuple):
                self.add_module(name, TupleBuffers(value, n_rows))
            elif value is not None:
                self.register_buffer(name, value.detach().clone())

    def _per_row(self, t: Tensor) -> bool:
        return t.ndim > 0 and t.shape[0] == self._n_rows

    def _items(self) -> Iterator[tuple[str, Any]]:
        children = dict(self.named_children())
        buffers = dict(self.named_buffers(recurse=False))
        for name in self._names:
            yield name, children.get(name, buffers.get(name))

    def get(self, idx: Tensor) -> NamedTuple:
        """The tuple of chains ``idx [B]`` (shared 0-d tensors as they are)."""
        out = {}
        for name, v in self._items():
            if isinstance(v, TupleBuffers):
                out[name] = v.get(idx)
            else:
                out[name] = v[idx] if v is not None and self._per_row(v) else v
        return self._type(**out)

    def put(self, idx: Tensor, value: NamedTuple) -> None:
        """Write ``value`` (the tuple of chains ``idx``) back; ``None`` fields are skipped."""
        fields = value._asdict()
        for name, buf in self._items():
            new = fields[name]
            if buf is None or new is None:
                continue
            if isinstance(buf, TupleBuffers):
                buf.put(idx, new)
            elif self._per_row(buf):
                buf[idx] = new
            else:
                buf.copy_(new)


class MCMCSampler(SafeLoadingModule):
    """Chains of ``kernel`` on ``target``, state in buffers, one move per training step.

    The chains' :class:`~lightning_ex2.kernels.ChainState` lives in buffers
    ``state.<field>`` and the kernel's :class:`~lightning_ex2.kernels.Tuning` (its
    parameters ``tuning.params.<field>``, e.g. ``step_size`` and
    ``inverse_mass_matrix``, and their adaptation state) in ``tuning.<field>``,
    registered generically from the tuples, so checkpoints, exact resume and
    multi-device merging need no per-field code. ``fit`` is the warm-up
    (:class:`~lightning_ex2.kernels.Warmup` for ``adapt_epochs`` sweeps, then frozen;
    the mass-matrix windows are placed in that many steps); ``predict`` (the
    ``sample`` command) runs the frozen kernel.

    Args:
        target: ``nn.Module`` with ``log_prob(x [..., D]) -> [...]`` and ``dim``;
            its parameters are frozen.
        kernel: a :class:`~lightning_ex2.protocols.Kernel` (ULA, MALA, HMC, ISIR, Ex2MCMC,
            or a user's kernel with those members).
        n_chains: total number of chains (linked from ``data.n_chains`` by the CLI).
        adapt_epochs: sweeps of ``fit`` during which the parameters adapt (step size
            for kernels with ``target_accept``, diagonal mass matrix); ``None`` = all of
            ``fit``. Afterwards, and in ``sample``, they are frozen.
        seed: seed of the chains' random numbers (initial points and moves);
            each rank of a multi-device run derives its own stream from it.
    """

    #: whether :meth:`after_move` trains on the particle system (FlEx2MCMC)
    needs_particles: bool = False

    def __init__(
        self,
        target: nn.Module,
        kernel: nn.Module,
        n_chains: int = 100,
        adapt_epochs: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_target(target)
        if not isinstance(kernel, Kernel):
            raise TypeError(
                f"model.kernel must be a lightning_ex2 Kernel (the members of "
                f"lightning_ex2.protocols.Kernel), got {type(kernel).__name__}"
            )
        n_chains = check_int(n_chains, "model.n_chains", type(self).__name__, 1)
        if adapt_epochs is not None and adapt_epochs < 0:
            raise ValueError(f"model.adapt_epochs must be >= 0 or null, got {adapt_epochs!r}")
        dim = target_dim(target)
        check_kernel_target(kernel, dim, "model.kernel")
        # No save_hyperparameters(): target/kernel are modules, and the run's config.yaml
        # (written by the CLI next to the checkpoints) is the record of the settings.
        self.automatic_optimization = False
        for p in nn.Module.parameters(target):  # not target.requires_grad_(False): a target
            p.requires_grad_(False)  # may name something else `parameters` (posteriordb ports)
        self.target = target
        self.kernel = kernel
        self.warmup = Warmup(kernel)
        self.n_chains = n_chains
        self.dim = dim
        self.adapt_epochs = adapt_epochs
        self.seed = seed
        self.sampling = SamplingConfig()
        self._generator: torch.Generator | None = None
        self._pending_rng: Tensor | None = None
        self._reseed_offset = 0
        self._ready_blocks: set[tuple[int, int]] = set()  # blocks known to be initialised
        self._frozen: bool | None = None  # host copy of tuning.frozen

        # The chains follow the target's dtype, as in lightning_ex2.sample (a float64
        # target runs float64 chains and a float64 kernel/flow); precision="64-true"
        # still converts the whole module afterwards.
        found = floating_dtype(target)
        dtype = found[1] if found else torch.get_default_dtype()
        if isinstance(kernel, nn.Module):
            kernel.to(dtype=dtype)
        # the chains' state, before allocating it (particles: per step, data.chains_per_batch)
        check_memory(n_chains, dim, type(self).__name__, itemsize=dtype.itemsize,
                     names="`model.n_chains`")  # fmt: skip
        x = torch.zeros(n_chains, dim, dtype=dtype)
        grad = torch.zeros_like(x) if kernel.uses_grad else None
        self.state = TupleBuffers(ChainState(x, torch.zeros(n_chains, dtype=dtype), grad), n_chains)
        tuning = self.warmup.init(n_chains, x)
        self.tuning = None if tuning is None else TupleBuffers(tuning, n_chains)
        if self.warmup.diagonal:  # the warm-up length the mass-matrix windows are placed in
            self.register_buffer("n_warmup", torch.tensor(-1, dtype=torch.int64))
        self.register_buffer("chain_ready", torch.zeros(n_chains, dtype=torch.bool))
        self.register_buffer("nonfinite", torch.zeros(n_chains, dtype=dtype))

    # ------------------------------------------------------------ state views
    @property
    def algorithm(self) -> str:
        """The name of the sampler that runs: the kernel's class (``MALA``, ``Ex2MCMC``, ...);
        what the output set's figures are titled by."""
        return type(self.kernel).__name__

    @property
    def chain_x(self) -> Tensor:
        """Positions of all chains ``[n_chains, D]`` (the ``state.x`` buffer)."""
        return self.state.x

    @property
    def chain_log_prob(self) -> Tensor:
        """``log pi`` of all chains ``[n_chains]`` (the ``state.log_prob`` buffer)."""
        return self.state.log_prob

    @property
    def step_size(self) -> Tensor | None:
        """Current step size, ``[]`` or ``[n_chains]``; ``None`` for kernels without one."""
        return None if self.tuning is None else self.tuning.params.step_size

    @property
    def params(self) -> NamedTuple | None:
        """The kernel's current parameters (all chains); ``None`` for kernels without."""
        if self.tuning is None:
            return None
        return self.tuning.get(torch.arange(self.n_chains, device=self.device)).params

    # ----------------------------------------------------------------- randomness
    @property
    def generator(self) -> torch.Generator:
        """The run's generator on the module's device; its state is checkpointed."""
        if self._generator is None or self._generator.device != self.device:
            g = make_generator(self.device)
            g.manual_seed(derived_seed(self.seed + self._reseed_offset, "moves", self.global_rank))
            if self._pending_rng is not None:
                g.set_state(self._pending_rng)
                self._pending_rng = None
            self._generator = g
        return self._generator

    def _per_chain_buffers(self) -> list[tuple[str, Tensor]]:
        """``(state_dict key, buffer)`` of every buffer with one row per chain."""
        return [
            (name, buf)
            for name, buf in self.named_buffers()
            if name.split(".")[0] in ("state", "tuning", "chain_ready", "nonfinite")
            and buf.ndim
            and buf.shape[0] == self.n_chains
        ]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store every rank's chains and random stream (called on all ranks)."""
        rng = self.generator.get_state().to(self.device)
        checkpoint["lightning_ex2_rng"] = gather_rows(self, rng.unsqueeze(0)).cpu()
        world = self.trainer.world_size
        checkpoint["lightning_ex2_world_size"] = world
        if world == 1:
            return
        mine = chain_shards(self.n_chains, world)[self.global_rank].to(self.device)
        state = checkpoint["state_dict"]
        for name, buf in self._per_chain_buffers():
            state[name] = merge_owned_rows(self, buf, mine).cpu()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # checkpoints written before the warm-up tracked the chains' health: start it empty
        # (and no re-initialisation checks for a run whose schedule did not place them)
        state_dict = checkpoint.get("state_dict", {})
        if any(k.startswith("tuning.") for k in state_dict):
            for name, buf in self.named_buffers():
                if name not in state_dict and name.startswith("tuning.health."):
                    state_dict[name] = torch.zeros_like(buf)
                elif name == "n_warmup" and name not in state_dict:
                    state_dict[name] = torch.tensor(0, dtype=torch.int64)
        states = checkpoint.get("lightning_ex2_rng")
        saved_world = checkpoint.get("lightning_ex2_world_size", 1)
        trainer = attached_trainer(self)
        world, rank = (trainer.world_size, trainer.global_rank) if trainer else (1, 0)
        if states is None:
            return
        if states.ndim == 1:  # single stream
            states = states.unsqueeze(0)
        if saved_world == world and states.shape[0] == world:
            # a fresh copy: set_state() on a row view (storage offset > 0) segfaults here
            self._pending_rng = states[rank].cpu().clone()
        else:
            rank_zero_warn(
                f"resuming a run of {saved_world} device(s) on {world}: the chains continue "
                "from their saved state, but their random streams are re-seeded, so the "
                "run is not bit-for-bit the one an uninterrupted run would give."
            )
            self._pending_rng = None
            self._reseed_offset = int(checkpoint.get("global_step", 0)) + 1
        self._generator = None
        self._ready_blocks.clear()  # the buffers are about to be replaced
        self._frozen = None

    # ------------------------------------------------------------- chain state
    def _default_init(self) -> Tensor:
        """Initial points of all chains from the kernel's default, same on every rank."""
        g = torch.Generator(device=self.device).manual_seed(derived_seed(self.seed, "init"))
        return self.kernel.initial_points(
            self.n_chains, self.dim, g, self.device, self.state.x.dtype
        )

    def _ensure_ready(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """Initialise the chains of this block on first sight.

        The check reads ``chain_ready`` (a host sync) only the first time a block is
        seen in this process; blocks are fixed by the DataModule's sharding, so a
        block ``(batch_idx, size)`` once ready stays ready.
        """
        idx = batch["index"]
        key = (batch_idx, idx.numel())
        if key in self._ready_blocks:
            return
        self._ready_blocks.add(key)
        if bool(self.chain_ready[idx].all()):
            return
        init = batch.get("init")
        if init is None:
            init = self._default_init()[idx]
        if init.shape[-1] != self.dim:
            raise ValueError(
                f"initial points have dim {init.shape[-1]}, the target has dim {self.dim}"
            )
        fresh = ~self.chain_ready[idx]
        new = self.kernel.init(init.to(self.state.x), self.target)
        old = self.state.get(idx)
        merged = (None if n is None else select(fresh, n, o) for n, o in zip(new, old))
        self.state.put(idx, ChainState(*merged))
        self.chain_ready[idx] = True

    def gather_state(self, idx: Tensor) -> ChainState:
        """The :class:`ChainState` of chains ``idx`` (``[B]``) from the buffers."""
        return self.state.get(idx)

    def scatter_state(self, idx: Tensor, state: ChainState) -> None:
        """Write ``state`` of chains ``idx`` back into the buffers."""
        self.state.put(idx, state)

    def gather_tuning(self, idx: Tensor) -> Tuning | None:
        return None if self.tuning is None else self.tuning.get(idx)

    @property
    def frozen(self) -> bool:
        """Whether the warm-up has ended: ``tuning.frozen`` read once (a host sync)."""
        if self._frozen is None:
            self._frozen = self.tuning is None or bool(self.tuning.frozen)
        return self._frozen

    def freeze_step_size(self) -> None:
        """End of warm-up: fix the step size to the dual-averaging average (idempotent)."""
        if self.frozen:
            return
        everything = torch.arange(self.n_chains, device=self.device)
        self.tuning.put(everything, self.warmup.freeze(self.tuning.get(everything)))
        self._frozen = True

    # -------------------------------------------------------------------- moves
    def move(
        self, state: ChainState, params: NamedTuple | None
    ) -> tuple[ChainState, Any, Particles | None]:
        """One kernel step; the particle system too when :attr:`needs_particles`."""
        if self.needs_particles and self.kernel.is_global:
            return self.kernel.step_with_particles(state, self.target, self.generator, params)
        new_state, info = self.kernel.step(state, self.target, self.generator, params)
        return new_state, info, None

    def _adapting(self) -> bool:
        if self.frozen:
            return False
        return self.adapt_epochs is None or self.current_epoch < self.adapt_epochs

    def _rank_mean(self) -> Callable[[Tensor], Tensor] | None:
        """The cross-rank mean of the shared adaptation statistic (multi-device runs)."""
        if self.trainer.world_size == 1:
            return None
        strategy = self.trainer.strategy
        return lambda t: strategy.reduce(t, reduce_op="mean")

    def _warmup_length(self) -> int:
        """Updates the warm-up will take: ``adapt_epochs`` sweeps, or all of ``fit``."""
        trainer = self.trainer
        total = float(trainer.estimated_stepping_batches)
        if self.adapt_epochs is not None:
            total = min(total, float(self.adapt_epochs * trainer.num_training_batches))
        return int(total) if math.isfinite(total) else 0

    def on_train_start(self) -> None:
        if not self.warmup.adapts:
            return
        if not self.warmup.diagonal:  # the checks only: placed in this fit's warm-up
            self.warmup = Warmup(self.kernel, n_warmup=self._warmup_length())
            return
        if int(self.n_warmup) < 0:  # a fresh run (a resumed one keeps its schedule)
            self.n_warmup.fill_(self._warmup_length())
        self.warmup = Warmup(self.kernel, n_warmup=int(self.n_warmup))
        if not self.warmup.windows and not self.frozen:
            rank_zero_warn(
                f"mass_matrix={self.kernel.mass_matrix!r} needs a warm-up of >= 20 steps to "
                "estimate it; "
                f"this fit adapts for {int(self.n_warmup)}: the mass matrix stays the identity"
            )

    def on_train_epoch_start(self) -> None:
        if self.adapt_epochs is not None and self.current_epoch >= self.adapt_epochs:
            self.freeze_step_size()

    def on_train_end(self) -> None:
        self.freeze_step_size()
        warn_nonfinite(self.nonfinite, f"fit (rank {self.global_rank})", self.target)

    def log_info(self, info: Any, batch_size: int) -> None:
        for name, value in info._asdict().items():
            if name == "nonfinite":
                continue  # logged as a running total (log_nonfinite)
            key = _LOG_NAMES.get(name, name)
            self.log(
                key,
                value.mean(),
                on_step=True,
                prog_bar=key.startswith("accept"),
                batch_size=batch_size,
            )
        if self.tuning is not None:
            self.log("step_size", self.step_size.mean(), on_step=True, batch_size=batch_size)

    def after_move(self, idx: Tensor, particles: Particles | None) -> dict[str, Tensor]:
        """Hook for subclasses (FlEx2MCMC trains its flow here); returns losses to log.

        A subclass that takes an optimizer step here returns a non-empty dict; an
        empty one means "no optimizer step", and the move is counted by
        :class:`~lightning_ex2.lightning.compat.MoveCounter`.
        """
        return {}

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        idx = batch["index"]
        self._ensure_ready(batch, batch_idx)
        tuning = self.gather_tuning(idx)
        state, info, particles = self.move(self.state.get(idx), Warmup.params(tuning))
        self.state.put(idx, state)
        if self._adapting():  # adapt; at the checks, lost chains take healthy ones' states
            tuning, state = self.warmup.step(tuning, info, state, self._rank_mean())
            self.state.put(idx, state)
            self.tuning.put(idx, tuning)
        self.nonfinite[idx] += info.nonfinite
        losses = self.after_move(idx, particles)
        if not losses:  # no optimizer step was taken: count the move as one
            self.move_counter().step()
        self.log_info(info, batch_size=idx.numel())
        self.log("nonfinite", self.nonfinite.sum(), on_step=True, batch_size=idx.numel())
        for key, value in losses.items():
            self.log(key, value, on_step=True, batch_size=idx.numel())
        return {"x": state.x.detach(), "index": idx}

    def move_counter(self) -> Any:
        """The optimizer whose no-op ``step()`` counts a move as a global step."""
        return self.optimizers()

    def configure_optimizers(self) -> Any:
        return MoveCounter()

    # -------------------------------------------------------------- evaluation
    @torch.no_grad()
    def _evaluate(self, batch: dict[str, Tensor], batch_idx: int, stage: str) -> None:
        """Score the current chains without moving them.

        Logs ``<stage>/log_prob`` (mean log-density of the chains) and, for global
        kernels, ``<stage>/particle_ess`` and ``<stage>/accept_global`` of one fresh
        i-SIR particle system: how good the (trained) proposal is. Uses its own
        generator, so evaluating never changes the chains' random stream.
        """
        with autograd_enabled():
            idx = batch["index"].clone()
            self._ensure_ready({**batch, "index": idx}, batch_idx)
            metrics = {f"{stage}/log_prob": self.state.log_prob[idx].mean()}
            if self.kernel.is_global:
                g = torch.Generator(device=self.device)
                g.manual_seed(derived_seed(self.seed, "evaluate", self.global_rank))
                _, info, _ = self.kernel.explore(self.state.get(idx), self.target, g)
                metrics[f"{stage}/particle_ess"] = info.particle_ess.mean()
                metrics[f"{stage}/accept_global"] = info.accept_global.mean()
        self.log_dict(metrics, batch_size=idx.numel(), sync_dist=True)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "test")

    # ---------------------------------------------------------------- sampling
    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Any]:
        """Run the frozen kernel for ``self.sampling`` on chains ``batch["index"]``.

        Returns ``samples [B, T, D]`` (``T = n_steps // thin``, fewer when a stop was
        requested), ``log_prob [B, T]``, per-chain ``[B]`` means of the kernel's info
        (``accept_global``, ``accept_local``, ...), ``nonfinite [B]`` (NaN/+inf
        log-densities met while sampling), ``step_size [B]`` (the frozen step size the
        draws were made with; kernels with one), ``index [B]``, ``complete`` (False when
        interrupted), ``wall_seconds``, ``draw_info`` (per-draw ``[B, T]`` stats, see
        :func:`~lightning_ex2.sampling.run_chains`) and ``start [B, D]`` (the chains'
        points before the run: shared starts make superchains). Runs with autograd whatever the Trainer's
        ``inference_mode`` (gradient kernels need it).
        """
        cfg = self.sampling
        with autograd_enabled():
            batch = {k: v.clone() if isinstance(v, Tensor) else v for k, v in batch.items()}
            idx = batch["index"]
            self._ensure_ready(batch, batch_idx)
            self.freeze_step_size()  # warm-up ends where sampling starts
            tuning = self.gather_tuning(idx)
            start = time.perf_counter()
            start_x = self.state.x[idx].clone()
            # The frozen kernel's own step: no particle system is kept (nothing trains here).
            chains = run_chains(
                self.kernel, self.target, self.state.get(idx), self.generator,
                n_steps=cfg.n_steps, tuning=tuning, burn_in=cfg.burn_in,
                thin=cfg.thin, adapt=False,
                progress=cfg.progress and self.trainer.is_global_zero, desc="Sampling",
            )  # fmt: skip
            self.state.put(idx, chains.state)
        warn_nonfinite(
            chains.info.get("nonfinite"), f"sample (rank {self.global_rank})", self.target
        )
        stuck = stuck_message(chains.info, f"sample (rank {self.global_rank})", idx)
        if stuck is not None:  # one warning per batch of chains, naming its stuck ones
            warnings.warn(stuck, RuntimeWarning, stacklevel=2)
        extra = {} if tuning is None else {"step_size": tuning.step_size.expand(idx.numel())}
        return {
            **chains.info,
            **extra,
            "index": idx,
            "samples": chains.samples,
            "log_prob": chains.log_prob,
            "complete": chains.complete,
            "wall_seconds": time.perf_counter() - start,
            "draw_info": chains.draw_info,
            "start": start_x,
        }
