"""``Ex2Trainer``: a Lightning ``Trainer`` with a ``sample`` command, checks before
any work, and a clean stop on SIGTERM/SIGINT.

* Before a run: the checkpoint (``ckpt_path``) is read and compared with the
  configured model (:func:`~lightning_ex2.runcheck.check_checkpoint`), the initial
  points and ``log_prob`` are probed, ``fit`` refuses a log folder that holds
  another run (:meth:`Ex2Trainer._check_fresh_folder`: one run per folder, a run
  that left no checkpoint restartable by its own config), ``sample`` checks its
  output folder.
* At the end of ``fit``: ``last.ckpt`` is saved at the final step when the periodic
  checkpoints missed it (:meth:`RunGuard.on_train_end`).
* During a run: when :mod:`lightning_ex2.interrupt` has a stop request (the CLI's
  signal handlers), ``fit`` stops after the current step, saves ``last.ckpt`` in
  the checkpoint folder and raises :class:`~lightning_ex2.errors.Interrupted`;
  ``sample`` stops its step loop, writes the draws made (``"complete": false``)
  and raises the same.
* An allocation failure becomes a :class:`~lightning_ex2.errors.UserError` naming
  the sizes and the options that reduce them.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import yaml
from lightning_fabric.plugins.environments import SLURMEnvironment
from pytorch_lightning.callbacks import Callback, ModelCheckpoint, ProgressBar
from pytorch_lightning.cli import SaveConfigCallback
from pytorch_lightning.utilities import rank_zero_warn
from pytorch_lightning.utilities.exceptions import SIGTERMException

from lightning_ex2 import interrupt
from lightning_ex2.callbacks.progress import SweepProgressBar
from lightning_ex2.callbacks.writer import SampleWriter
from lightning_ex2.errors import Interrupted, UserError
from lightning_ex2.lightning_compat import launcher_processes, slurm_auto_resume_checkpoint
from lightning_ex2.modules.sampler import MCMCSampler
from lightning_ex2.runcheck import (
    SPEC_KEY,
    check_checkpoint,
    check_model_data,
    is_out_of_memory,
    memory_message,
    model_spec,
    setting_tensors,
)
from lightning_ex2.sampling import check_run
from lightning_ex2.strategy import ChainDDPStrategy

#: Ex2Trainer's defaults (the CLI adds its own on top: ``lightning_ex2.cli``)
TRAINER_DEFAULTS: dict[str, Any] = {
    # gradient kernels need autograd in every stage (validate/test/sample too)
    "inference_mode": False,
    # an epoch is one sweep (often one step): validate every 100 sweeps, not each
    "check_val_every_n_epoch": 100,
    "num_sanity_val_steps": 0,
}


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


def _saved_step(path: Path) -> int | None:
    """``global_step`` of the checkpoint at ``path`` (``None``: none or unreadable)."""
    if not path.is_file():
        return None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # unreadable: rewrite it
        return None
    return ckpt.get("global_step") if isinstance(ckpt, dict) else None


class RunGuard(Callback):
    """Stops ``fit`` cleanly on a stop request and records the model spec in checkpoints.

    * ``on_train_batch_end``: when :func:`lightning_ex2.interrupt.requested` (on any
      rank: a reduced decision, so all ranks stop at the same step), raise
      :class:`~lightning_ex2.errors.Interrupted`; ``on_exception`` then saves
      :func:`interrupt_checkpoint_path` (also for Lightning's own SIGTERM stop).
    * ``on_train_end``: ``last.ckpt`` of every ``ModelCheckpoint(save_last=True)``
      holds the final step (saved again when the file on disk is older).
    * ``on_save_checkpoint``: stores :attr:`spec` (the configured model's
      :func:`~lightning_ex2.runcheck.model_spec`) under ``"lightning_ex2_spec"``.
    * With ``override`` tensors (``--override_ckpt``), the config's setting tensors
      (target, kernel buffers: :func:`~lightning_ex2.runcheck.setting_tensors`) are
      put back after the checkpoint was restored.
    """

    def __init__(self) -> None:
        super().__init__()
        self.spec: dict[str, str] | None = None
        self.saved: Path | None = None
        self.keep_target: dict[str, torch.Tensor] | None = None

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
        self.saved = path

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if self.spec is not None:
            checkpoint[SPEC_KEY] = self.spec

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """``last.ckpt`` is the final state: ``ModelCheckpoint(save_last=True)`` saves it
        only with its periodic checkpoints (``every_n_train_steps``), so a run whose
        ``max_steps`` is not a multiple would end with an older ``last.ckpt``."""
        for path in final_checkpoint_paths(trainer):
            stale = _saved_step(path) != trainer.global_step if trainer.is_global_zero else False
            if trainer.world_size > 1:
                stale = trainer.strategy.broadcast(stale, src=0)
            if stale and trainer.global_step > 0:
                trainer.save_checkpoint(path, weights_only=False)  # every rank: gathers chains

    def _restore_target(self, pl_module: pl.LightningModule) -> None:
        if self.keep_target:
            own = pl_module.state_dict()
            keep = {k: v for k, v in self.keep_target.items() if k in own}
            pl_module.load_state_dict(keep, strict=False)
            self.keep_target = None

    @staticmethod
    def _take_over_signals(trainer: pl.Trainer) -> None:
        """Replace Lightning's SIGTERM handler (set just before the loops start) by
        :func:`lightning_ex2.interrupt.install`'s, which passes the signal on to the
        processes of Lightning's DDP launcher (and, in those processes, to the
        launcher: a signal to any one rank stops them all). Lightning's handler broadcasts from
        inside the signal handler, which can pair with another collective of the run
        and hang it; here the ranks agree at a step boundary instead. Lightning's
        teardown puts the handlers back as they were before the run."""
        procs = launcher_processes(trainer)
        launcher = _launcher_parent() if trainer.world_size > 1 and not procs else None

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
        self._take_over_signals(trainer)

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore_target(pl_module)
        self._take_over_signals(trainer)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore_target(pl_module)
        if trainer.state.fn != "fit":
            self._take_over_signals(trainer)

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore_target(pl_module)
        self._take_over_signals(trainer)


#: beginnings of the kernels' messages about the run's input found only once it runs
#: (the initial points the data give, a target whose gradient is missing at them):
#: shown as one-line errors, not tracebacks
RUN_INPUT_ERRORS = ("non-finite start point", "initial points must have shape")

#: environment variable naming the process that may launch DDP ranks (set by
#: :class:`Ex2Trainer` in a process that is not itself a rank; the ranks inherit it)
LAUNCHER_ENV = "LIGHTNING_EX2_LAUNCHER_PID"


def _launcher_parent() -> int | None:
    """The pid of the process that started this rank with Lightning's DDP launcher
    (the rank's parent, which set :data:`LAUNCHER_ENV`), else ``None``."""
    pid = os.environ.get(LAUNCHER_ENV, "")
    if os.environ.get("LOCAL_RANK", "0") == "0" or not pid.isdigit():
        return None
    return int(pid) if int(pid) == os.getppid() else None


def default_output_dir(trainer: pl.Trainer, ckpt_path: str | None) -> Path:
    """``sample``'s output folder without ``--output_dir``: ``samples`` in the fit run's
    log folder (the checkpoint's ``<log_dir>/checkpoints/..``), else in
    ``trainer.default_root_dir``; never a new log version."""
    if ckpt_path is not None and ckpt_path not in ("last", "best", "hpc", "registry"):
        folder = Path(ckpt_path).parent
        return (folder.parent if folder.name == "checkpoints" else folder) / "samples"
    return Path(trainer.default_root_dir) / "samples"


def _untrained(model: MCMCSampler) -> list[str]:
    """What ``sample`` without a checkpoint runs as configured, in words."""
    parts = []
    if any(p.requires_grad for p in model.kernel.parameters()):
        flow = any("Flow" in type(m).__name__ for m in model.kernel.modules())
        parts.append(f"an untrained {'flow' if flow else 'proposal'}")
    if model.step_size is not None:
        parts.append("the initial step size, not adapted")
    parts.append("chains fresh from their initial points")
    return parts


def _checkpoint_dirs(trainer: pl.Trainer) -> list[Path]:
    dirs = []
    for cb in trainer.checkpoint_callbacks:
        if isinstance(cb, ModelCheckpoint):
            root = cb.dirpath or Path(trainer.log_dir or trainer.default_root_dir) / "checkpoints"
            dirs.append(Path(root))
    return dirs


class Ex2Trainer(pl.Trainer):
    """``Trainer`` plus :meth:`sample`, the ``lightning-ex2 sample`` subcommand.

    Unless told otherwise it shows one progress bar over the whole run
    (:class:`~lightning_ex2.callbacks.SweepProgressBar`) instead of one per epoch,
    and defaults to :data:`TRAINER_DEFAULTS`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        callbacks = kwargs.get("callbacks")
        callbacks = (
            []
            if callbacks is None
            else (list(callbacks) if isinstance(callbacks, list | tuple) else [callbacks])
        )
        if kwargs.get("enable_progress_bar", True) is not False and not any(
            isinstance(cb, ProgressBar) for cb in callbacks
        ):
            callbacks.append(SweepProgressBar())
        self.guard = next((cb for cb in callbacks if isinstance(cb, RunGuard)), None) or RunGuard()
        if self.guard not in callbacks:
            callbacks.append(self.guard)
        kwargs["callbacks"] = callbacks
        self._created = time.time()
        if "LOCAL_RANK" not in os.environ:  # not a rank: the ranks it may launch know it
            os.environ[LAUNCHER_ENV] = str(os.getpid())
        for key, value in TRAINER_DEFAULTS.items():
            kwargs.setdefault(key, value)
        if kwargs.get("strategy") == "ddp":
            kwargs["strategy"] = ChainDDPStrategy()
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------ before a run
    def preflight(
        self,
        model: pl.LightningModule,
        datamodule: Any = None,
        ckpt_path: str | None = None,
        override_ckpt: bool = False,
    ) -> None:
        """The checks run before any step (see the module docstring).

        Raises:
            UserError: naming the checkpoint, field or option to change.
        """
        check_model_data(model, datamodule)
        self.guard.spec = model_spec(model)
        self.guard.keep_target = None
        if ckpt_path is None:
            ckpt_path = self._slurm_resume_path()  # Lightning will resume from it
        if ckpt_path is None or ckpt_path in ("last", "best", "hpc", "registry"):
            return
        ckpt, diffs = check_checkpoint(model, ckpt_path, override=override_ckpt)
        del ckpt
        if diffs:
            rank_zero_warn(
                f"--override_ckpt: running the config's model, not the checkpoint's: {diffs}"
            )
            self.guard.keep_target = {
                k: v.detach().clone() for k, v in setting_tensors(model).items()
            }

    def _check_fresh_folder(self, ckpt_path: str | None) -> None:
        """One run per folder: ``fit`` writes into a log/checkpoint folder of its own.

        * ``--ckpt_path`` (a resume): the log folder is new, or the one whose checkpoint
          folder holds that checkpoint; another run's folder is refused, naming both.
        * No ``--ckpt_path``: the folder is new; or it holds checkpoints (refused: resume
          from the newest); or it holds only the ``config.yaml`` of a run that left no
          checkpoint (killed before its first one): the same config restarts it there
          (its TensorBoard events and ``hparams.yaml`` are removed), another is refused.
        """
        if ckpt_path in ("last", "best", "hpc", "registry"):
            return
        log_dir = Path(self.log_dir) if self.log_dir else None
        config = log_dir / "config.yaml" if log_dir is not None else None
        has_config = config is not None and config.is_file()
        dirs = _checkpoint_dirs(self)
        ckpts = sorted(
            (p for d in dirs if d.is_dir() for p in d.glob("*.ckpt")),
            key=lambda p: p.stat().st_mtime,
        )
        if ckpt_path is not None:
            source = Path(ckpt_path).resolve().parent
            if any(source == d.resolve() for d in dirs) or not (has_config or ckpts):
                return  # resuming in its own folder, or continuing it in a new one
            where = log_dir if has_config else ckpts[-1].parent
            raise UserError(
                f"--ckpt_path {ckpt_path} is a checkpoint of the run in {source.parent}, but "
                f"the log folder {where} holds another run; resume in the checkpoint's own "
                "folder (the same --trainer.logger.init_args.version) or in a new one"
            )
        if self._slurm_resume_path() is not None:
            return  # Lightning resumes from its hpc checkpoint: last.ckpt is overwritten
        if ckpts:
            newest = next((p for p in ckpts if p.name == "last.ckpt"), ckpts[-1])
            raise UserError(
                f"the log folder {log_dir} already holds a run (its checkpoints); resume it "
                f"with --ckpt_path {newest}, or give a new folder "
                "(e.g. --trainer.logger.init_args.version), or delete it"
            )
        if not has_config:
            return
        assert config is not None and log_dir is not None
        ours = self._config_text()
        try:
            same = ours is not None and yaml.safe_load(config.read_text()) == yaml.safe_load(ours)
        except (OSError, yaml.YAMLError):
            same = False
        if not same:
            raise UserError(
                f"the log folder {log_dir} already holds a run (config.yaml) that left no "
                "checkpoint, with another config; give a new folder "
                "(e.g. --trainer.logger.init_args.version), or delete it"
            )
        # the same command after a run that saved nothing (e.g. SIGKILL before its first
        # checkpoint): restart it from step 0, without the dead attempt's events
        if self.is_global_zero:
            for p in log_dir.iterdir():
                dead = p.name.startswith("events.out.tfevents.") or p.name == "hparams.yaml"
                if dead and p.is_file() and p.stat().st_mtime < self._created:
                    p.unlink(missing_ok=True)
        rank_zero_warn(
            f"fit: restarting the run in {log_dir} from step 0: it left no checkpoint "
            "(stopped before its first one)"
        )

    def _config_text(self) -> str | None:
        """The config the CLI will write as ``config.yaml`` (``None`` outside the CLI)."""
        for cb in self.callbacks:
            if isinstance(cb, SaveConfigCallback):
                return cb.parser.dump(cb.config, skip_none=False)
        return None

    def _slurm_resume_path(self) -> str | None:
        """The checkpoint Lightning resumes from by itself under SLURM (``ckpt_path``
        unset, an ``hpc_ckpt_<n>.ckpt`` of its auto-requeue in ``default_root_dir``)."""
        if not SLURMEnvironment.detect():
            return None
        return slurm_auto_resume_checkpoint(self.default_root_dir)

    def _run_guarded(
        self, fn: Any, model: Any, datamodule: Any, /, *args: Any, **kwargs: Any
    ) -> Any:
        try:
            return fn(*args, **kwargs)
        except SIGTERMException as err:  # Lightning's own SIGTERM stop (exits 0 otherwise)
            reason = interrupt.requested() or "SIGTERM"
            raise Interrupted(reason, f"stopped by {reason}") from err
        except (ValueError, TypeError) as err:
            if str(err).startswith(RUN_INPUT_ERRORS):  # the data, not a defect: one line
                raise UserError(str(err)) from err
            raise
        except (RuntimeError, MemoryError) as err:
            if is_out_of_memory(err):
                n_draws = None
                if self.state.fn == "predict":
                    n_draws = model.sampling.n_steps // model.sampling.thin
                raise UserError(memory_message(err, model, datamodule, n_draws)) from err
            raise

    def fit(
        self,
        model: pl.LightningModule,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        datamodule: pl.LightningDataModule | None = None,
        ckpt_path: str | None = None,
        override_ckpt: bool = False,
        **kwargs: Any,
    ) -> None:
        """``Trainer.fit`` after :meth:`preflight` and the log-folder rule.

        Args:
            override_ckpt: run even though the config's target/kernel/proposal differ
                from the checkpoint's (the config's target and kernel settings are used).
        """
        self.preflight(model, datamodule, ckpt_path, override_ckpt)
        self._check_fresh_folder(ckpt_path)
        self.guard.saved = None
        try:
            self._run_guarded(
                super().fit, model, datamodule, model, train_dataloaders, val_dataloaders,
                datamodule, ckpt_path, **kwargs,
            )  # fmt: skip
        except Interrupted as err:
            interrupt.clear()  # handled here: a later run in this process starts afresh
            saved = self.guard.saved
            where = (
                f"checkpoint saved to {saved}; resume with --ckpt_path {saved}"
                if saved is not None
                else "no checkpoint saved (no step was completed)"
            )
            raise Interrupted(
                err.reason, f"fit stopped by {err.reason} at step {self.global_step}; {where}"
            ) from err

    def _evaluate(
        self, run: Any, args: tuple[Any, ...], override_ckpt: bool, kwargs: dict[str, Any]
    ) -> Any:
        """``run(*args, **kwargs)`` (``Trainer.validate``/``test`` with ``args`` = model,
        dataloaders, ckpt_path, verbose, datamodule) after :meth:`preflight`."""
        model, _, ckpt_path, _, datamodule = args
        if model is not None:
            self.preflight(model, datamodule, ckpt_path, override_ckpt)
        return self._run_guarded(run, model, datamodule, *args, **kwargs)

    def validate(
        self,
        model: Any = None,
        dataloaders: Any = None,
        ckpt_path: str | None = None,
        verbose: bool = True,
        datamodule: Any = None,
        override_ckpt: bool = False,
        **kwargs: Any,
    ) -> Any:
        """``Trainer.validate`` after :meth:`preflight`."""
        args = (model, dataloaders, ckpt_path, verbose, datamodule)
        return self._evaluate(super().validate, args, override_ckpt, kwargs)

    def test(
        self,
        model: Any = None,
        dataloaders: Any = None,
        ckpt_path: str | None = None,
        verbose: bool = True,
        datamodule: Any = None,
        override_ckpt: bool = False,
        **kwargs: Any,
    ) -> Any:
        """``Trainer.test`` after :meth:`preflight`."""
        args = (model, dataloaders, ckpt_path, verbose, datamodule)
        return self._evaluate(super().test, args, override_ckpt, kwargs)

    def sample(
        self,
        model: pl.LightningModule,
        datamodule: pl.LightningDataModule | None = None,
        ckpt_path: str | None = None,
        n_steps: int = 1000,
        burn_in: int = 0,
        thin: int = 1,
        output_dir: str | None = None,
        overwrite: bool = False,
        progress: bool = True,
        override_ckpt: bool = False,
    ) -> dict[str, Any] | None:
        """Run the frozen sampler and write one output set (samples.npz, summary.json, ...).

        Args:
            model: an :class:`~lightning_ex2.modules.MCMCSampler` (or FlEx2MCMC).
            datamodule: the chains (a :class:`~lightning_ex2.data.ChainDataModule`).
            ckpt_path: checkpoint of a ``fit`` run (chain state, trained flow, adapted
                step size); without it the untrained module samples.
            n_steps: steps after burn-in.
            burn_in: extra steps run first and discarded (no adaptation).
            thin: keep one draw in ``thin``.
            output_dir: folder of the outputs (default :func:`default_output_dir`: the
                fit run's ``<log_dir>/samples``); it must be new or empty, or hold a
                previous output set and ``overwrite``.
            overwrite: replace a previous output set in ``output_dir`` as a whole.
            progress: show a progress bar.
            override_ckpt: run even though the config's target/kernel/proposal differ
                from the checkpoint's (the config's target and kernel settings are used).

        Returns the summary (on rank 0; ``None`` elsewhere).

        Raises:
            UserError: a bad option, output folder or checkpoint, before any step.
            Interrupted: a stop signal cut the run short; the draws made so far were
                written with ``"complete": false`` (nothing if none was kept).
        """
        try:
            check_run(n_steps, burn_in, thin, prefix="--")
        except ValueError as err:
            raise UserError(str(err)) from err
        if not isinstance(model, MCMCSampler):
            raise UserError(f"sample needs an MCMCSampler module, got {type(model).__name__}")
        writer = next((cb for cb in self.callbacks if isinstance(cb, SampleWriter)), None)
        if writer is None:
            writer = SampleWriter()
            self.callbacks.append(writer)
        if output_dir is not None:
            writer.output_dir = output_dir
        elif writer.output_dir is None:
            writer.output_dir = str(default_output_dir(self, ckpt_path))
        writer.overwrite = overwrite
        writer.output_set(self).check()  # before any work
        self.preflight(model, datamodule, ckpt_path, override_ckpt)
        if ckpt_path is None and not bool(getattr(model, "chain_ready", [False]).any()):
            rank_zero_warn(
                "sample: no --ckpt_path given; sampling with the module as configured "
                f"({', '.join(_untrained(model))})."
            )
        model.sampling.n_steps = n_steps
        model.sampling.burn_in = burn_in
        model.sampling.thin = thin
        model.sampling.progress = progress
        self._run_guarded(
            super().predict,
            model,
            datamodule,
            model,
            datamodule=datamodule,
            ckpt_path=ckpt_path,
            return_predictions=False,
        )
        reason = interrupt.requested()
        if reason is not None:
            interrupt.clear()  # handled here: a later run in this process starts afresh
            if not self.is_global_zero:
                where = "rank 0 writes the outputs"
            elif writer.written is not None:
                what = (
                    "outputs complete" if writer.complete else 'partial outputs ("complete": false)'
                )
                where = f"{what} in {writer.written}"
                if writer.replaced_complete and not writer.complete:
                    where += " (they replaced the complete set that was there: --overwrite true)"
            else:
                where = "no output written (no draw kept)"
            raise Interrupted(reason, f"sample stopped by {reason}; {where}")
        return writer.summary if self.is_global_zero else None
