"""``Ex2Trainer``: a Lightning ``Trainer`` with a ``sample`` command, checks before any
work (:mod:`lightning_ex2.lightning.preflight`), and a clean stop on SIGTERM/SIGINT
(:class:`~lightning_ex2.lightning.guard.RunGuard`: ``fit`` saves ``last.ckpt``, ``sample`` writes
the draws made, both raise :class:`~lightning_ex2.errors.Interrupted`).

``sample`` is a straight pipe: one :class:`~lightning_ex2.output.writer.SamplePlan` (its
output set checked), the checkpoint read once, the run's
:class:`~lightning_ex2.lightning.SampleWriter` given the plan, and the
:class:`~lightning_ex2.output.writer.SampleResult` it returns read back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ProgressBar
from pytorch_lightning.cli import SaveConfigCallback
from pytorch_lightning.utilities import rank_zero_warn
from pytorch_lightning.utilities.exceptions import SIGTERMException

from lightning_ex2 import interrupt
from lightning_ex2.checks import is_out_of_memory, memory_message
from lightning_ex2.environment import check_free_space
from lightning_ex2.errors import Interrupted, RankLost, UserError
from lightning_ex2.lightning.callbacks.progress import SweepProgressBar
from lightning_ex2.lightning.callbacks.writer import SampleWriter, ScoresSamples
from lightning_ex2.lightning.compat import checkpoint_preloaded, use_safe_checkpoint_io
from lightning_ex2.lightning.data import ChainDDPStrategy
from lightning_ex2.lightning.guard import (
    LAUNCHER_ENV,
    RunGuard,
    final_checkpoint_paths,
    saved_step,
)
from lightning_ex2.lightning.module import MCMCSampler, SamplingConfig
from lightning_ex2.lightning.preflight import (
    Preflight,
    check_fresh_folder,
    default_output_dir,
    run_checks,
    untrained,
)  # fmt: skip
from lightning_ex2.output.files import OutputSet
from lightning_ex2.output.lock import RunLock
from lightning_ex2.output.writer import (
    OutputOptions,
    SamplePlan,
    SampleResult,
    output_bytes,
    prepare_writer,
)
from lightning_ex2.sampling import check_run, warn_convergence
from lightning_ex2.validation import check_memory

__all__ = ["RUN_INPUT_ERRORS", "TRAINER_DEFAULTS", "Ex2Trainer"]

#: Ex2Trainer's defaults (the CLI adds its own on top: ``lightning_ex2.lightning.cli``)
TRAINER_DEFAULTS: dict[str, Any] = {
    # gradient kernels need autograd in every stage (validate/test/sample too)
    "inference_mode": False,
    # an epoch is one sweep (often one step): validate every 100 sweeps, not each
    "check_val_every_n_epoch": 100,
    "num_sanity_val_steps": 0,
}

#: beginnings of the kernels' messages about the run's input found only once it runs
#: (the initial points the data give, a target whose gradient is missing at them):
#: shown as one-line errors, not tracebacks
RUN_INPUT_ERRORS = ("non-finite start point", "initial points must have shape")


def _evaluation(stage: str) -> Callable[..., Any]:
    """``Ex2Trainer.validate``/``test``: Lightning's ``stage`` after the preflight
    (:meth:`Ex2Trainer._evaluate`); one definition for both."""
    lightning_run = getattr(pl.Trainer, stage)

    def run(
        self: Ex2Trainer,
        model: Any = None,
        dataloaders: Any = None,
        ckpt_path: str | None = None,
        verbose: bool = True,
        datamodule: Any = None,
        override_ckpt: bool = False,
        trust_checkpoint: bool = False,
        **kwargs: Any,
    ) -> Any:
        return self._evaluate(
            lightning_run, model, datamodule, ckpt_path, override_ckpt, trust_checkpoint,
            dataloaders=dataloaders, verbose=verbose, **kwargs,
        )  # fmt: skip

    run.__name__ = stage
    run.__qualname__ = f"Ex2Trainer.{stage}"
    key = "val" if stage == "validate" else stage
    run.__doc__ = f"""Score the current chains without moving them ({key}/* in TensorBoard).

        Lightning's ``Trainer.{stage}`` after :meth:`preflight`: ``{key}/log_prob`` and, for
        global kernels, ``{key}/particle_ess`` and ``{key}/accept_global`` of one fresh
        particle system. The ``lightning-ex2`` command writes no file (its scores are
        printed); in Python, the trainer's own loggers record them.

        Args:
            override_ckpt: run even though the config's target/kernel/proposal differ
                from the checkpoint's (the config's target and kernel settings are used).
            trust_checkpoint: read a ``ckpt_path`` that needs full unpickling (it can
                run any code it holds: only for a file you trust).
        """
    return run


#: folders whose frames are not "the user's line" for a warning (Lightning, this package)
_LIBRARY_DIRS = tuple(str(Path(m.__file__).resolve().parent) for m in (pl,))


def _caller_is_user() -> bool:
    """Whether the caller of :meth:`Ex2Trainer.sample` is user code: not LightningCLI
    (the ``sample`` command) and not this package. A warning then points at that line;
    otherwise at the trainer's own."""
    frame = inspect.currentframe()
    caller = frame.f_back.f_back if frame is not None and frame.f_back is not None else None
    if caller is None:
        return False
    path = str(Path(caller.f_code.co_filename).resolve())
    own = str(Path(__file__).resolve().parents[1])
    return not path.startswith((*_LIBRARY_DIRS, own))


def is_peer_loss(err: BaseException) -> bool:
    """Whether a collective failed because another process of the run is gone (gloo's
    "Connection reset/closed by peer", a broken pipe, torch's ``DistBackendError``)."""
    import torch.distributed as dist

    backend_error = getattr(dist, "DistBackendError", None)
    if backend_error is not None and isinstance(err, backend_error):
        return True
    return bool(
        re.search(r"Connection (reset|closed) by peer|Broken pipe|gloo.*(closed|reset)", str(err))
    )


class Ex2Trainer(pl.Trainer):
    """Lightning's ``Trainer`` with lightning-ex2's defaults and the ``sample`` command.

    :meth:`sample` is the ``lightning-ex2 sample`` subcommand.

    Unless told otherwise it shows one progress bar over the whole run
    (:class:`~lightning_ex2.lightning.SweepProgressBar`) instead of one per epoch,
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
        #: reads checkpoints with weights_only=True, writes them atomically in their folder
        self.checkpoint_reader = use_safe_checkpoint_io(self)

    # ------------------------------------------------------------ before a run
    def preflight(
        self,
        model: pl.LightningModule,
        datamodule: Any = None,
        ckpt_path: str | None = None,
        override_ckpt: bool = False,
        keep_checkpoint: bool = False,
        trust_checkpoint: bool = False,
    ) -> Preflight:
        """The checks run before any step (:func:`lightning_ex2.lightning.preflight.run_checks`);
        arms the :class:`~lightning_ex2.lightning.guard.RunGuard` with what they found.

        Raises:
            UserError: naming the checkpoint, field or option to change.
        """
        checks = run_checks(
            self, model, datamodule, ckpt_path,
            override_ckpt=override_ckpt, keep_checkpoint=keep_checkpoint,
            trust_checkpoint=trust_checkpoint,
        )  # fmt: skip
        self.guard.arm(checks.spec, checks.keep_target)
        return checks

    def _config_text(self) -> str | None:
        """The run's config as the CLI writes it (``config.yaml``; ``None`` outside the
        CLI): its ``SaveConfigCallback``'s dump."""
        for cb in self.callbacks:
            if isinstance(cb, SaveConfigCallback):
                return cb.parser.dump(cb.config, skip_none=False)
        return None

    def _run_guarded(
        self, fn: Any, model: Any, datamodule: Any, trust: bool, /, *args: Any, **kwargs: Any
    ) -> Any:
        """``fn(*args, **kwargs)`` (a Lightning stage), its failures as our errors; within
        it Lightning's restore unpickles in full only when ``trust``."""
        reader = self.checkpoint_reader
        if reader is not None:
            reader.trust = bool(trust)
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
            if self.world_size > 1 and is_peer_loss(err):
                raise RankLost(self._peer_lost_message(err)) from err
            if is_out_of_memory(err):
                n_draws = None
                if self.state.fn == "predict":
                    n_draws = model.sampling.n_steps // model.sampling.thin
                raise UserError(memory_message(err, model, datamodule, n_draws)) from err
            raise
        finally:
            if reader is not None:
                reader.trust = False

    def _peer_lost_message(self, err: BaseException) -> str:
        """One line: which stage stopped, the collective's reason, what to resume from."""
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        reason = re.sub(r"^\[[^\]]*\]\s*", "", first).split(". This is typically")[0]
        fn = str(getattr(self.state.fn, "value", self.state.fn))  # a TrainerFn
        stage = {"predict": "sample"}.get(fn, fn)
        text = (
            f"{stage} stopped at step {self.global_step}: another process of the run "
            f"ended unexpectedly ({reason})"
        )
        if stage != "fit":
            return text
        saved = [(saved_step(p), p) for p in final_checkpoint_paths(self)]
        saved = [(step, p) for step, p in saved if step is not None]
        if not saved:
            return f"{text}; no checkpoint was saved yet: run the same command again"
        step, path = max(saved, key=lambda item: item[0])
        return f"{text}; resume from step {step} with --ckpt_path {path}"

    def fit(
        self,
        model: pl.LightningModule,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        datamodule: pl.LightningDataModule | None = None,
        ckpt_path: str | None = None,
        override_ckpt: bool = False,
        trust_checkpoint: bool = False,
        **kwargs: Any,
    ) -> None:
        """Warm up: move the chains, adapt the step size, train a FlEx2MCMC flow; checkpoint.

        Lightning's ``Trainer.fit`` after :meth:`preflight` and the log-folder rule (a new
        folder, or the one of the run that ``ckpt_path`` resumes).

        Args:
            override_ckpt: run even though the config's target/kernel/proposal differ
                from the checkpoint's (the config's target and kernel settings are used).
            trust_checkpoint: read a ``ckpt_path`` that needs full unpickling (it can
                run any code it holds: only for a file you trust); without it such a
                file is refused.
        """
        with self._run_folder_lock():
            checks = self.preflight(
                model, datamodule, ckpt_path, override_ckpt, trust_checkpoint=trust_checkpoint
            )
            check_fresh_folder(
                self, ckpt_path, self._config_text(), self._created, checks.run_folder
            )
            try:
                self._run_guarded(
                    super().fit, model, datamodule, trust_checkpoint, model, train_dataloaders,
                    val_dataloaders, datamodule, ckpt_path, **kwargs,
                )  # fmt: skip
            except Interrupted as err:
                interrupt.clear()  # handled here: a later run in this process starts afresh
                saved = self.guard.saved_checkpoint()
                where = (
                    f"checkpoint saved to {saved}; resume with --ckpt_path {saved}"
                    if saved is not None
                    else "no checkpoint saved (no step was completed)"
                )
                message = f"fit stopped by {err.reason} at step {self.global_step}; {where}"
                raise Interrupted(err.reason, message) from err

    @contextlib.contextmanager
    def _run_folder_lock(self) -> Iterator[None]:
        """Hold the run's log folder (:class:`~lightning_ex2.output.lock.RunLock`, rank 0) for
        the whole run: a second process there is refused, naming this one."""
        if not self.is_global_zero:
            yield
            return
        folder = Path(self.log_dir or self.default_root_dir)
        lock = RunLock(
            folder, what="the log folder",
            remedy="wait for it to end, or give a new folder (e.g. "
            "--trainer.logger.init_args.version)",
        )  # fmt: skip
        try:
            lock.acquire()
        except OSError as err:
            raise UserError(f"the log folder {folder}: cannot write there ({err})") from err
        try:
            yield
        finally:
            lock.release()
            lock.remove_created()  # only folders the run left empty

    def _evaluate(
        self,
        run: Callable[..., Any],
        model: Any,
        datamodule: Any,
        ckpt_path: str | None,
        override_ckpt: bool,
        trust_checkpoint: bool,
        **kwargs: Any,
    ) -> Any:
        """``run(self, model=..., datamodule=..., ckpt_path=..., **kwargs)`` (Lightning's
        ``validate``/``test``) after :meth:`preflight`."""
        if model is not None:
            self.preflight(
                model, datamodule, ckpt_path, override_ckpt, trust_checkpoint=trust_checkpoint
            )
        return self._run_guarded(
            run, model, datamodule, trust_checkpoint, self, model=model, datamodule=datamodule,
            ckpt_path=ckpt_path, **kwargs,
        )  # fmt: skip

    validate = _evaluation("validate")
    test = _evaluation("test")

    def _plan(
        self,
        ckpt_path: str | None,
        n_steps: int,
        burn_in: int,
        thin: int,
        output_dir: str | None,
        overwrite: bool,
        progress: bool,
    ) -> SamplePlan:
        """The one plan of a ``sample`` run, its output set checked (the one check, on
        every rank, before any work). A :class:`SampleWriter` in ``callbacks`` gives the
        :class:`~lightning_ex2.output.writer.OutputOptions`; the image-metrics callbacks add
        their scorers."""
        configured = next((cb for cb in self.callbacks if isinstance(cb, SampleWriter)), None)
        options = configured.options if configured is not None else OutputOptions()
        scorers = list(options.scorers)
        for cb in self.callbacks:  # e.g. the image metrics score the draws (not a call)
            scorer = cb.sample_scorer if isinstance(cb, ScoresSamples) else None
            if scorer is not None and scorer not in scorers:
                scorers.append(scorer)
        options = dataclasses.replace(options, scorers=tuple(scorers))
        prepare_writer(options.save_figures)
        folder = output_dir or options.output_dir or default_output_dir(self, ckpt_path)
        output = OutputSet(folder, overwrite=overwrite)
        if self.is_global_zero:  # the one writer holds the folder (released by sample)
            output.lock()
        else:
            output.check()
        return SamplePlan(
            output, n_steps, burn_in, thin, progress, self._config_text(), options=options
        )

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
        trust_checkpoint: bool = False,
    ) -> dict[str, Any] | None:
        """Run the frozen sampler and write one output set (samples.npz, summary.json, ...).

        Args:
            model: an :class:`~lightning_ex2.lightning.MCMCSampler` (or FlEx2MCMC).
            datamodule: the chains (a :class:`~lightning_ex2.lightning.ChainDataModule`).
            ckpt_path: checkpoint of a ``fit`` run (chain state, trained flow, adapted
                step size); without it the untrained module samples.
            n_steps: steps after burn-in.
            burn_in: extra steps run first and discarded (no adaptation).
            thin: keep one draw in ``thin``.
            output_dir: folder of the outputs (default
                :func:`~lightning_ex2.lightning.preflight.default_output_dir`: the fit run's
                ``<log_dir>/samples``); it must be new or empty, or hold a previous
                output set and ``overwrite``.
            overwrite: replace a previous output set in ``output_dir`` as a whole.
            progress: show a progress bar.
            override_ckpt: run even though the config's target/kernel/proposal differ
                from the checkpoint's (the config's target and kernel settings are used).
            trust_checkpoint: read a ``ckpt_path`` that needs full unpickling (it can
                run any code it holds: only for a file you trust); without it such a
                file is refused.

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
        plan = self._plan(ckpt_path, n_steps, burn_in, thin, output_dir, overwrite, progress)
        user = _caller_is_user()  # a warning points at the user's line (else the trainer's)
        try:
            result = self._predict(plan, model, datamodule, ckpt_path, override_ckpt,
                                   trust_checkpoint)  # fmt: skip
        finally:
            plan.output.unlock()
        if result.summary is not None:  # attributed to the user's line, never Lightning's
            level = 3 if user else 2  # warn_convergence < sample < the user's line
            warn_convergence(result.summary, f"sample ({result.written})", stacklevel=level)
        reason = interrupt.requested()
        if reason is not None:
            interrupt.clear()  # handled here: a later run in this process starts afresh
            if not self.is_global_zero:
                where = "rank 0 writes the outputs"
            elif result.written is not None:
                what = (
                    "outputs complete" if result.complete else 'partial outputs ("complete": false)'
                )
                where = f"{what} in {result.written}"
                if result.replaced_complete and not result.complete:
                    where += " (they replaced the complete set that was there: --overwrite true)"
            else:
                where = "no output written (no draw kept)"
            raise Interrupted(reason, f"sample stopped by {reason}; {where}")
        return result.summary if self.is_global_zero else None

    def _predict(
        self,
        plan: SamplePlan,
        model: MCMCSampler,
        datamodule: pl.LightningDataModule | None,
        ckpt_path: str | None,
        override_ckpt: bool,
        trust_checkpoint: bool,
    ) -> SampleResult:
        """Lightning's ``predict`` for ``plan``, once its output folder is held."""
        checks = self.preflight(
            model, datamodule, ckpt_path, override_ckpt, keep_checkpoint=True,
            trust_checkpoint=trust_checkpoint,
        )  # fmt: skip
        if self.is_global_zero:  # room for the set, before the first step
            check_free_space(
                plan.output.dest, output_bytes(model.n_chains, model.dim, plan.n_draws),
                "the output set", plan.output.option,
            )  # fmt: skip
        try:  # the draws are kept on the device until the end
            check_memory(
                model.n_chains, model.dim, "sample", n_draws=plan.n_draws,
                itemsize=model.chain_x.dtype.itemsize, device=self.strategy.root_device,
                names="data.n_chains, --n_steps or a larger --thin",
            )  # fmt: skip
        except ValueError as err:
            raise UserError(str(err)) from err
        if ckpt_path is None and not bool(model.chain_ready.any()):
            rank_zero_warn(
                "sample: no --ckpt_path given; sampling with the module as configured "
                f"({', '.join(untrained(model))})."
            )
        model.sampling = SamplingConfig(plan.n_steps, plan.burn_in, plan.thin, plan.progress)
        writer = SampleWriter(plan=plan)
        configured = self.callbacks
        callbacks = [cb for cb in configured if not isinstance(cb, SampleWriter)] + [writer]
        states = checks.checkpoint.get("callbacks") if checks.checkpoint is not None else None
        if isinstance(states, dict):  # the fit run's ModelCheckpoint: left out on purpose
            present = {cb.state_key for cb in callbacks}
            checks.checkpoint["callbacks"] = {k: v for k, v in states.items() if k in present}
        # Lightning restores from the checkpoint the preflight read (no second read)
        restore_from = checkpoint_preloaded(self, checks.ckpt_path, checks.checkpoint)
        del checks  # from here the loader holds the checkpoint, until Lightning takes it
        self.callbacks = callbacks
        try:
            with restore_from:
                self._run_guarded(
                    super().predict, model, datamodule, trust_checkpoint, model,
                    datamodule=datamodule, ckpt_path=ckpt_path, return_predictions=False,
                )  # fmt: skip
        finally:
            self.callbacks = configured
        return writer.result or SampleResult(None, None, False, False)
