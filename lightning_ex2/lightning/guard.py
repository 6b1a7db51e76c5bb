"""``RunGuard``: the callback that stops ``fit`` cleanly and keeps ``last.ckpt`` final.

Armed by the trainer's preflight (:meth:`RunGuard.arm`), it

* raises :class:`~lightning_ex2.errors.Interrupted` at the step boundary after a stop
  request (:mod:`lightning_ex2.interrupt`; any rank's, reduced so all ranks stop at the
  same step) and saves :func:`interrupt_checkpoint_path` (also on Lightning's own
  SIGTERM stop);
* keeps ``last.ckpt`` the final step and the only ``last*`` (:meth:`RunGuard.on_train_end`,
  :meth:`RunGuard.own_last_checkpoints`);
* stores :func:`~lightning_ex2.checks.model_spec` and the run folder in every
  checkpoint, puts the config's setting tensors back after a restore under
  ``--override_ckpt``, and takes over the stop signals from Lightning
  (:meth:`RunGuard.take_over_signals`).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from pytorch_lightning.utilities.exceptions import SIGTERMException

from lightning_ex2 import interrupt
from lightning_ex2.checks import SPEC_KEY
from lightning_ex2.errors import Interrupted
from lightning_ex2.lightning.compat import RUN_FOLDER_KEY, launcher_processes
from lightning_ex2.trust import load_torch

#: environment variable naming the process that may launch DDP ranks (set by
#: :class:`~lightning_ex2.lightning.trainer.Ex2Trainer` in a process that is not itself a rank;
#: the ranks inherit it)
LAUNCHER_ENV = "LIGHTNING_EX2_LAUNCHER_PID"


def launcher_parent() -> int | None:
    """The pid of the process that started this rank with Lightning's DDP launcher
    (the rank's parent, which set :data:`LAUNCHER_ENV`), else ``None``."""
    pid = os.environ.get(LAUNCHER_ENV, "")
    if os.environ.get("LOCAL_RANK", "0") == "0" or not pid.isdigit():
        return None
    return int(pid) if int(pid) == os.getppid() else None


def interrupt_checkpoint_path(trainer: pl.Trainer) -> Path:
    """Where ``fit`` saves on a stop signal: ``last.ckpt`` in the checkpoint folder
    (the first ``ModelCheckpoint``'s ``dirpath``, else ``<log_dir>/checkpoints``)."""
    cb = trainer.checkpoint_callback
    if isinstance(cb, ModelCheckpoint) and cb.dirpath is not None:
        return Path(cb.dirpath) / f"{cb.CHECKPOINT_NAME_LAST}{cb.FILE_EXTENSION}"
    root = trainer.log_dir or trainer.default_root_dir
    return Path(root) / "checkpoints" / f"{ModelCheckpoint.CHECKPOINT_NAME_LAST}.ckpt"


def final_checkpoint_paths(trainer: pl.Trainer) -> list[Path]:
    """The ``last.ckpt`` of every ``ModelCheckpoint(save_last=True)`` of ``trainer``
    (whose last-checkpoint name has no ``{metric}`` fields)."""
    out = []
    for cb in trainer.checkpoint_callbacks:
        if isinstance(cb, ModelCheckpoint) and cb.save_last and "{" not in cb.CHECKPOINT_NAME_LAST:
            root = cb.dirpath or Path(trainer.log_dir or trainer.default_root_dir) / "checkpoints"
            out.append(Path(root) / f"{cb.CHECKPOINT_NAME_LAST}{cb.FILE_EXTENSION}")
    return list(dict.fromkeys(out))


def saved_step(path: Path) -> int | None:
    """``global_step`` of the checkpoint at ``path`` (``None``: none or unreadable)."""
    if not path.is_file():
        return None
    try:
        ckpt = load_torch(path, mmap=True)
    except Exception:  # unreadable: rewrite it
        return None
    return ckpt.get("global_step") if isinstance(ckpt, dict) else None


class RunGuard(Callback):
    """Stops ``fit`` cleanly on a stop request and records the model spec in checkpoints
    (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._spec: dict[str, str] | None = None
        self._keep_target: dict[str, torch.Tensor] | None = None
        self._saved: Path | None = None

    def arm(
        self, spec: dict[str, str] | None, keep_target: dict[str, torch.Tensor] | None = None
    ) -> None:
        """Before a run: the spec stored in its checkpoints, and the setting tensors to
        put back once Lightning restored a checkpoint (``None``: none)."""
        self._spec, self._keep_target, self._saved = spec, keep_target, None

    def saved_checkpoint(self) -> Path | None:
        """The checkpoint the last interrupted ``fit`` saved (``None``: none)."""
        return self._saved

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any, **kwargs: Any
    ) -> None:
        stop = interrupt.requested() is not None
        if trainer.world_size > 1:
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if stop:
            reason = interrupt.requested() or "SIGTERM"
            raise Interrupted(reason, f"fit stopped by {reason} at step {trainer.global_step}")

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, Interrupted | SIGTERMException):
            return
        if trainer.state.fn != "fit" or trainer.global_step == 0:
            return
        path = interrupt_checkpoint_path(trainer)
        trainer.save_checkpoint(path, weights_only=False)  # every rank: gathers the chains
        self._saved = path

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if self._spec is not None:
            checkpoint[SPEC_KEY] = self._spec
        if trainer.log_dir is not None:  # SafeCheckpointIO stores it relative to the file
            checkpoint[RUN_FOLDER_KEY] = str(Path(trainer.log_dir).resolve())

    @staticmethod
    def own_last_checkpoints(trainer: pl.Trainer) -> None:
        """Tell every ``ModelCheckpoint(save_last=True)`` that ``last.ckpt`` in its folder
        is its own (public ``last_model_path``): Lightning's version counter then
        replaces it instead of writing ``last-v1.ckpt`` beside it (it does so for a
        ``last.ckpt`` it did not write in this process: this callback's saves, a
        resumed run's, a copied run folder's)."""
        for cb in trainer.checkpoint_callbacks:
            mine = isinstance(cb, ModelCheckpoint) and cb.save_last and cb.dirpath is not None
            if mine and "{" not in cb.CHECKPOINT_NAME_LAST:
                last = Path(cb.dirpath) / f"{cb.CHECKPOINT_NAME_LAST}{cb.FILE_EXTENSION}"
                cb.last_model_path = str(last)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """``last.ckpt`` is the final state: ``ModelCheckpoint(save_last=True)`` saves it
        only with its periodic checkpoints (``every_n_train_steps``), so a run whose
        ``max_steps`` is not a multiple would end with an older ``last.ckpt``; a run
        whose callbacks keep no ``last.ckpt`` gets one (:func:`interrupt_checkpoint_path`)
        unless checkpointing is off (``enable_checkpointing: false``)."""
        paths = final_checkpoint_paths(trainer)
        if not paths and trainer.checkpoint_callbacks:
            paths = [interrupt_checkpoint_path(trainer)]
        for path in paths:
            stale = saved_step(path) != trainer.global_step if trainer.is_global_zero else False
            if trainer.world_size > 1:
                stale = trainer.strategy.broadcast(stale, src=0)
            if stale and trainer.global_step > 0:
                trainer.save_checkpoint(path, weights_only=False)  # every rank: gathers chains

    def _restore_target(self, pl_module: pl.LightningModule) -> None:
        if self._keep_target:
            own = pl_module.state_dict()
            keep = {k: v for k, v in self._keep_target.items() if k in own}
            pl_module.load_state_dict(keep, strict=False)
            self._keep_target = None

    @staticmethod
    def take_over_signals(trainer: pl.Trainer) -> None:
        """Replace Lightning's SIGTERM handler (set just before the loops start) by
        :func:`lightning_ex2.interrupt.install`'s, which passes the signal on to the
        processes of Lightning's DDP launcher (and, in those processes, to the
        launcher: a signal to any one rank stops them all). Lightning's handler broadcasts from
        inside the signal handler, which can pair with another collective of the run
        and hang it; here the ranks agree at a step boundary instead. Lightning's
        teardown puts the handlers back as they were before the run."""
        procs = launcher_processes(trainer)
        launcher = launcher_parent() if trainer.world_size > 1 and not procs else None

        def forward(signum: int) -> None:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signum)
            if launcher is not None:  # a rank Lightning started: tell rank 0, which tells all
                with contextlib.suppress(ProcessLookupError):
                    os.kill(launcher, signum)

        interrupt.install(forward=forward)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore_target(pl_module)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.own_last_checkpoints(trainer)  # after Lightning restored the callbacks' state
        self.take_over_signals(trainer)

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore_target(pl_module)
        self.take_over_signals(trainer)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore_target(pl_module)
        if trainer.state.fn != "fit":
            self.take_over_signals(trainer)

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore_target(pl_module)
        self.take_over_signals(trainer)
