"""``MCMCSampler``: any kernel of :mod:`lightning_ex2.kernels` as a LightningModule.

The module orchestrates only: the kernel moves the chains, the module keeps
their state in registered buffers (so checkpoints carry it), logs, and
adapts/freezes the step size. ``fit`` is the warm-up (step-size adaptation,
and for :class:`FlEx2MCMC` flow training); ``predict`` — used by the
``lightning-ex2 sample`` command — runs the frozen kernel and returns draws.

Run it with::

    lightning-ex2 fit --config configs/funnel/mala.yaml
    lightning-ex2 sample --config configs/funnel/mala.yaml --ckpt_path logs/.../last.ckpt
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_warn
from torch import Tensor, nn

from lightning_ex2.kernels.adaptation import DualAveragingState, StepSize
from lightning_ex2.kernels.base import ChainState, Kernel
from lightning_ex2.kernels.isir import Particles
from lightning_ex2.random import make_generator
from lightning_ex2.sampling import run_chains
from lightning_ex2.sharding import chain_shards
from lightning_ex2.targets.base import check_target, target_dim
from lightning_ex2.validation import check_int

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


def _derived_seed(seed: int, purpose: str, rank: int = 0) -> int:
    """Independent 63-bit seeds per purpose and rank from one user seed."""
    words = [seed % 2**32, seed // 2**32 % 2**32, sum(map(ord, purpose)), rank]
    return int(np.random.SeedSequence(words).generate_state(2, np.uint64)[0] >> np.uint64(1))


def step_size_kernel(kernel: Kernel) -> StepSize | None:
    """The (sub)kernel that owns a step size: the kernel itself, Ex2MCMC's MALA, or None."""
    if isinstance(kernel, StepSize):
        return kernel
    sub = getattr(kernel, "mala", None)
    return sub if isinstance(sub, StepSize) else None


class MCMCSampler(pl.LightningModule):
    """Chains of ``kernel`` on ``target``, state in buffers, one move per training step.

    Args:
        target: ``nn.Module`` with ``log_prob(x [..., D]) -> [...]`` and ``dim``;
            its parameters are frozen.
        kernel: a :class:`~lightning_ex2.kernels.Kernel` (ULA, MALA, HMC, ISIR, Ex2MCMC).
        n_chains: total number of chains (linked from ``data.n_chains`` by the CLI).
        adapt_epochs: sweeps of ``fit`` during which the step size adapts (for
            kernels with ``target_accept``); ``None`` = all of ``fit``. Afterwards,
            and in ``sample``, the step size is frozen.
        seed: seed of the chains' random numbers (initial points and moves);
            each rank of a multi-device run derives its own stream from it.
    """

    def __init__(
        self,
        target: nn.Module,
        kernel: Kernel,
        n_chains: int = 100,
        adapt_epochs: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_target(target)
        if not isinstance(kernel, Kernel):
            raise TypeError(
                f"model.kernel must be a lightning_ex2 Kernel, got {type(kernel).__name__}"
            )
        n_chains = check_int(n_chains, "model.n_chains", type(self).__name__, 1)
        if adapt_epochs is not None and adapt_epochs < 0:
            raise ValueError(f"model.adapt_epochs must be >= 0 or null, got {adapt_epochs!r}")
        dim = target_dim(target)
        proposal = getattr(kernel, "proposal", None)
        if proposal is not None and getattr(proposal, "dim", dim) != dim:
            raise ValueError(
                f"model.kernel.proposal.dim ({proposal.dim}) != model.target.dim ({dim})"
            )
        # No save_hyperparameters(): target/kernel are modules, and the run's config.yaml
        # (written by the CLI next to the checkpoints) is the record of the settings.
        self.automatic_optimization = False
        self.target = target.requires_grad_(False)
        self.kernel = kernel
        self.n_chains = n_chains
        self.dim = dim
        self.adapt_epochs = adapt_epochs
        self.seed = seed
        self.sampling = SamplingConfig()
        self._generator: torch.Generator | None = None
        self._pending_rng: Tensor | None = None
        self._ready_blocks: set[tuple[int, int]] = set()  # blocks known to be initialised
        self._adapt_done: bool | None = None  # host copy of the adapt_done buffer

        dtype = torch.get_default_dtype()
        self.register_buffer("chain_x", torch.zeros(n_chains, dim, dtype=dtype))
        self.register_buffer("chain_log_prob", torch.zeros(n_chains, dtype=dtype))
        self.register_buffer("chain_ready", torch.zeros(n_chains, dtype=torch.bool))
        self._sk = step_size_kernel(kernel)
        if kernel.uses_grad:
            self.register_buffer("chain_grad", torch.zeros(n_chains, dim, dtype=dtype))
        if self._sk is not None:
            shape = (n_chains,) if self._sk.per_chain_step_size else ()
            h = torch.full(shape, self._sk.step_size, dtype=dtype)
            self.register_buffer("step_size", h)
            self.register_buffer("da_log_step", h.log())
            self.register_buffer("da_log_step_avg", h.log())
            self.register_buffer("da_error_avg", torch.zeros(shape, dtype=dtype))
            self.register_buffer("da_count", torch.zeros(shape, dtype=dtype))
            self.register_buffer("da_mu", h.log() + torch.log(torch.tensor(10.0, dtype=dtype)))
            self.register_buffer("adapt_done", torch.tensor(self._sk.target_accept is None))

    # ----------------------------------------------------------------- randomness
    @property
    def generator(self) -> torch.Generator:
        """The run's generator on the module's device; its state is checkpointed."""
        if self._generator is None or self._generator.device != self.device:
            g = make_generator(self.device)
            offset = getattr(self, "_reseed_offset", 0)
            g.manual_seed(_derived_seed(self.seed + offset, "moves", self.global_rank))
            if self._pending_rng is not None:
                g.set_state(self._pending_rng)
                self._pending_rng = None
            self._generator = g
        return self._generator

    def _chain_buffers(self) -> list[str]:
        """Names of the buffers with one row per chain."""
        names = ["chain_x", "chain_log_prob", "chain_ready"]
        if self.kernel.uses_grad:
            names.append("chain_grad")
        if self._sk is not None and self._sk.per_chain_step_size:
            names += [
                "step_size",
                "da_log_step",
                "da_log_step_avg",
                "da_error_avg",
                "da_count",
                "da_mu",
            ]
        return names

    def _all_gather(self, t: Tensor) -> Tensor:
        """``[world, *t.shape]`` on every rank (bool tensors travel as uint8)."""
        if self.trainer.world_size == 1:
            return t.unsqueeze(0)
        gathered = self.all_gather(t.to(torch.uint8) if t.dtype == torch.bool else t)
        return gathered.to(t.dtype)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store every rank's chains and random stream (called on all ranks)."""
        rng = self.generator.get_state().to(self.device)
        checkpoint["lightning_ex2_rng"] = self._all_gather(rng).cpu()
        world = self.trainer.world_size
        checkpoint["lightning_ex2_world_size"] = world
        if world == 1:
            return
        shards = chain_shards(self.n_chains, world)
        state = checkpoint["state_dict"]
        for name in self._chain_buffers():
            gathered = self._all_gather(getattr(self, name))
            merged = getattr(self, name).clone()
            for rank, shard in enumerate(shards):
                merged[shard.to(self.device)] = gathered[rank][shard.to(self.device)]
            state[name] = merged.cpu()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        states = checkpoint.get("lightning_ex2_rng")
        saved_world = checkpoint.get("lightning_ex2_world_size", 1)
        trainer = self._trainer
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
        self._adapt_done = None

    @property
    def adapting_done(self) -> bool:
        """``adapt_done`` read once (a host sync), then kept in sync by the module."""
        if self._adapt_done is None:
            self._adapt_done = self._sk is None or bool(self.adapt_done)
        return self._adapt_done

    # ------------------------------------------------------------- chain state
    def _default_init(self) -> Tensor:
        """Initial points of all chains from the kernel's default, same on every rank."""
        g = torch.Generator(device=self.device).manual_seed(_derived_seed(self.seed, "init"))
        return self.kernel.initial_points(
            self.n_chains, self.dim, g, self.device, self.chain_x.dtype
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
        init = init.to(self.chain_x)
        state = self.kernel.init(init, self.target)
        fresh = ~self.chain_ready[idx]
        self.chain_x[idx] = torch.where(fresh[:, None], state.x, self.chain_x[idx])
        self.chain_log_prob[idx] = torch.where(fresh, state.log_prob, self.chain_log_prob[idx])
        if self.kernel.uses_grad:
            self.chain_grad[idx] = torch.where(fresh[:, None], state.grad, self.chain_grad[idx])
        self.chain_ready[idx] = True

    def _block(self, buffer: Tensor, idx: Tensor) -> Tensor:
        return buffer[idx] if buffer.ndim else buffer

    def gather_state(self, idx: Tensor) -> ChainState:
        """The :class:`ChainState` of chains ``idx`` (``[B]``) from the buffers."""
        grad = self.chain_grad[idx] if self.kernel.uses_grad else None
        h = da = None
        if self._sk is not None:
            h = self._block(self.step_size, idx)
            if not self.adapting_done:
                da = DualAveragingState(
                    *(
                        self._block(getattr(self, f"da_{n}"), idx)
                        for n in ("log_step", "log_step_avg", "error_avg", "count", "mu")
                    )
                )
        return ChainState(self.chain_x[idx], self.chain_log_prob[idx], grad, h, da)

    def scatter_state(self, idx: Tensor, state: ChainState) -> None:
        """Write ``state`` of chains ``idx`` back into the buffers."""
        self.chain_x[idx] = state.x
        self.chain_log_prob[idx] = state.log_prob
        if self.kernel.uses_grad:
            self.chain_grad[idx] = state.grad
        if self._sk is not None:
            self._write(self.step_size, idx, state.step_size)
            if state.adapt is not None:
                for name, value in state.adapt._asdict().items():
                    self._write(getattr(self, f"da_{name}"), idx, value)

    @staticmethod
    def _write(buffer: Tensor, idx: Tensor, value: Tensor) -> None:
        if buffer.ndim:
            buffer[idx] = value
        else:
            buffer.copy_(value)

    def freeze_step_size(self) -> None:
        """End of warm-up: fix the step size to the dual-averaging average (idempotent)."""
        if self.adapting_done:
            return
        self.step_size.copy_(self.da_log_step_avg.exp())
        self.adapt_done.fill_(True)
        self._adapt_done = True

    # -------------------------------------------------------------------- moves
    #: whether :meth:`after_move` trains on the particle system (FlEx2MCMC)
    needs_particles: bool = False

    def move(self, state: ChainState, adapt: bool) -> tuple[ChainState, Any, Particles | None]:
        """One kernel step; the particle system too when :attr:`needs_particles`."""
        step_with_particles = getattr(self.kernel, "step_with_particles", None)
        if step_with_particles is None or not self.needs_particles:
            new_state, info = self.kernel.step(state, self.target, self.generator, adapt=adapt)
            return new_state, info, None
        return step_with_particles(state, self.target, self.generator, adapt=adapt)

    def _adapting(self) -> bool:
        if self.adapting_done:
            return False
        return self.adapt_epochs is None or self.current_epoch < self.adapt_epochs

    def on_fit_start(self) -> None:
        if self._sk is not None and self.trainer.world_size > 1:
            strategy = self.trainer.strategy
            self._sk.reduce_mean = lambda t: strategy.reduce(t, reduce_op="mean")

    def on_fit_end(self) -> None:
        if self._sk is not None:
            self._sk.reduce_mean = None

    def on_train_epoch_start(self) -> None:
        if self.adapt_epochs is not None and self.current_epoch >= self.adapt_epochs:
            self.freeze_step_size()

    def on_train_end(self) -> None:
        self.freeze_step_size()

    def log_info(self, info: Any, batch_size: int) -> None:
        for name, value in info._asdict().items():
            if name == "accept_local" and getattr(self.kernel, "n_local_steps", 1) == 0:
                continue
            key = _LOG_NAMES.get(name, name)
            self.log(
                key,
                value.mean(),
                on_step=True,
                prog_bar=key.startswith("accept"),
                batch_size=batch_size,
            )
        if self._sk is not None:
            self.log("step_size", self.step_size.mean(), on_step=True, batch_size=batch_size)

    def after_move(self, idx: Tensor, particles: Particles | None) -> dict[str, Tensor]:
        """Hook for subclasses (FlEx2MCMC trains its flow here); returns losses to log."""
        return {}

    def count_step(self) -> None:
        """Count a training step that took no optimizer step as one (global) step.

        Lightning's ``global_step`` counts optimizer steps; a chain move is our
        step, so ``max_steps``, ``ModelCheckpoint(every_n_train_steps=...)`` and
        the checkpointed step count mean "moves" even when no flow is trained.
        """
        progress = self.trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress
        progress.increment_ready()
        progress.increment_completed()

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        idx = batch["index"]
        self._ensure_ready(batch, batch_idx)
        state, info, particles = self.move(self.gather_state(idx), adapt=self._adapting())
        self.scatter_state(idx, state)
        losses = self.after_move(idx, particles)
        if not losses:  # no optimizer step was taken
            self.count_step()
        self.log_info(info, batch_size=idx.numel())
        for key, value in losses.items():
            self.log(key, value, on_step=True, batch_size=idx.numel())
        return {"x": state.x.detach(), "index": idx}

    def configure_optimizers(self) -> Any:
        return None

    # -------------------------------------------------------------- evaluation
    @torch.no_grad()
    def _evaluate(self, batch: dict[str, Tensor], batch_idx: int, stage: str) -> None:
        """Score the current chains without moving them.

        Logs ``<stage>/log_prob`` (mean log-density of the chains) and, for global
        kernels, ``<stage>/particle_ess`` and ``<stage>/accept_global`` of one fresh
        i-SIR particle system: how good the (trained) proposal is. Uses its own
        generator, so evaluating never changes the chains' random stream.
        """
        idx = batch["index"]
        self._ensure_ready(batch, batch_idx)
        metrics = {f"{stage}/log_prob": self.chain_log_prob[idx].mean()}
        isir = getattr(self.kernel, "isir", self.kernel)
        if hasattr(isir, "step_with_particles") and hasattr(isir, "proposal"):
            g = torch.Generator(device=self.device)
            g.manual_seed(_derived_seed(self.seed, "evaluate", self.global_rank))
            _, info, _ = isir.step_with_particles(self.gather_state(idx), self.target, g)
            metrics[f"{stage}/particle_ess"] = info.particle_ess.mean()
            metrics[f"{stage}/accept_global"] = info.accept_global.mean()
        self.log_dict(metrics, batch_size=idx.numel(), sync_dist=True)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "test")

    # ---------------------------------------------------------------- sampling
    @torch.no_grad()
    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Any]:
        """Run the frozen kernel for ``self.sampling`` on chains ``batch["index"]``.

        Returns ``samples [B, n_steps // thin, D]``, ``log_prob [B, T]``, per-chain
        means of the kernel's info (``accept_global``, ``accept_local``, ...),
        ``index [B]`` and ``wall_seconds``.
        """
        cfg = self.sampling
        idx = batch["index"]
        self._ensure_ready(batch, batch_idx)
        self.freeze_step_size()
        start = time.perf_counter()
        # The frozen kernel's own step: no particle system is kept (nothing trains here).
        state, samples, log_prob, out = run_chains(
            self.kernel, self.target, self.gather_state(idx), self.generator,
            n_steps=cfg.n_steps, burn_in=cfg.burn_in, thin=cfg.thin, adapt=False,
            progress=cfg.progress and self.trainer.is_global_zero, desc="Sampling",
        )  # fmt: skip
        self.scatter_state(idx, state)
        if getattr(self.kernel, "n_local_steps", 1) == 0:
            out.pop("accept_local", None)
        out.update(
            index=idx,
            samples=samples,
            log_prob=log_prob,
            wall_seconds=time.perf_counter() - start,
        )
        return out
