"""Everything lightning-ex2 needs from Lightning beyond its everyday API, in one place.

Most of it is public API used in a way worth explaining (a chain move counted as a step,
autograd under any ``inference_mode``, :class:`SafeCheckpointIO` as every trainer's
checkpoint reader and atomic writer, :func:`checkpoint_preloaded` handing Lightning the
checkpoint the preflight read). The members that touch Lightning's or jsonargparse's
private surface, because no public hook exists, say so in their docstrings:
:func:`logged_step`, :class:`ConfigFirstCLI`, :func:`launcher_processes`,
:func:`slurm_auto_resume_checkpoint`, the parser readers (:func:`cli_parsers`,
:func:`parser_actions`, :func:`subcommand_parsers`, :func:`action_typehint`,
:func:`class_parameters`) and the progress-bar readers; ``tests/lightning/test_compat.py``
fails loudly when a Lightning upgrade removes what they rely on.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins import CheckpointIO, TorchCheckpointIO
from pytorch_lightning.callbacks import TQDMProgressBar
from pytorch_lightning.cli import LightningCLI

from lightning_ex2.output.files import save_torch
from lightning_ex2.trust import load_torch


class MoveCounter(torch.optim.Optimizer):
    """A no-op optimizer whose ``step()`` counts one training step (one chain move).

    Lightning's ``trainer.global_step`` counts optimizer steps, and in manual
    optimization it is documented to grow by one per ``optimizer.step()``. A chain
    move that trains nothing is still "a step" for ``max_steps`` and
    ``ModelCheckpoint(every_n_train_steps=...)``, so modules call this optimizer's
    ``step()`` (through ``self.optimizers()``) on such moves. It holds one empty
    tensor (``torch.optim`` needs a parameter) and changes nothing.

    Example:
        >>> counter = MoveCounter()
        >>> counter.step() is None
        True
    """

    def __init__(self) -> None:
        super().__init__([torch.zeros(0, requires_grad=True)], {})

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        return None if closure is None else closure()


@contextlib.contextmanager
def autograd_enabled() -> Iterator[None]:
    """Leave ``torch.inference_mode`` (e.g. the Trainer's ``predict``), keep ``no_grad``.

    Gradient kernels compute ``grad log pi`` by autograd (under their own
    ``enable_grad``), which inference mode forbids; the Trainer's
    ``inference_mode=True`` would otherwise make ``sample``/``validate`` fail.
    Tensors the Trainer made in inference mode (the batch) must be cloned inside.
    """
    with torch.inference_mode(False), torch.no_grad():
        yield


def attached_trainer(module: pl.LightningModule) -> pl.Trainer | None:
    """The module's Trainer, or ``None`` when it is not attached to one."""
    try:
        return module.trainer
    except RuntimeError:  # "... is not attached to a `Trainer`"
        return None


def logged_step(trainer: pl.Trainer) -> int:
    """The step at which Lightning writes this epoch's epoch-level metrics.

    Lightning logs them at ``_batches_that_stepped - 1`` (``_FitLoop.on_advance_end``);
    no public attribute says so (``global_step`` counts optimizer steps, two per
    batch for a GAN). Falls back to ``global_step - 1`` if the attribute is gone (the
    compat test fails first).
    """
    loop = trainer.fit_loop.epoch_loop
    stepped = loop._batches_that_stepped if hasattr(loop, "_batches_that_stepped") else None
    return max(int(trainer.global_step if stepped is None else stepped) - 1, 0)


class ConfigFirstCLI(LightningCLI):
    """``LightningCLI`` whose config stays as given when ``--ckpt_path`` is passed.

    LightningCLI (2.x) re-parses the config with the hyper-parameters saved in the
    checkpoint, so a checkpoint silently wins over the config. lightning-ex2's config
    is the record of a run (samplers save no hyper-parameters; the GAN trainer saves
    them for reference only). Lightning offers no public switch for that merge.
    """

    def _parse_ckpt_path(self) -> None:
        """Skip Lightning's merge of the checkpoint's hyper-parameters into the config
        (it would also die with a traceback on an unreadable file); the trainer's
        preflight compares the checkpoint with the config instead."""


def launcher_processes(trainer: pl.Trainer) -> list[Any]:
    """The worker processes Lightning's DDP launcher started (``[]`` for none).

    ``_SubprocessScriptLauncher.procs`` is not public; signals are forwarded to them.
    """
    return list(getattr(trainer.strategy.launcher, "procs", None) or [])


def slurm_auto_resume_checkpoint(root: str | Path) -> str | None:
    """The newest ``hpc_ckpt_<n>.ckpt`` in ``root``: the file Lightning's SLURM
    auto-requeue saves and resumes from by itself (its naming is not public API)."""

    def number(p: Path) -> int:
        tail = p.stem.rsplit("_", 1)[-1]
        return int(tail) if tail.isdigit() else -1

    found = sorted(Path(root).glob("hpc_ckpt_*.ckpt"), key=number)
    return str(found[-1]) if found else None


def cli_parsers(parser: Any) -> list[Any]:
    """``parser`` and its subcommand parsers, recursively (``[parser]`` if it has none)."""
    out = [parser]
    action = getattr(parser, "_subcommands_action", None)
    for sub in getattr(action, "_name_parser_map", {}).values():
        out.extend(cli_parsers(sub))
    return out


def parser_actions(parser: Any) -> list[Any]:
    """The options (argparse actions) of one parser."""
    return list(getattr(parser, "_actions", []))


def subcommand_parsers(parser: Any) -> dict[str, Any]:
    """``{name: parser}`` of ``parser``'s subcommands (``{}`` if it has none)."""
    action = getattr(parser, "_subcommands_action", None)
    return dict(getattr(action, "_name_parser_map", {}))


def action_typehint(action: Any) -> Any:
    """The type an option of a jsonargparse parser takes (``None``: not a typed option)."""
    return getattr(action, "_typehint", None)


def class_parameters(cls: type) -> dict[str, Any]:
    """``{name: annotation}`` of the arguments jsonargparse accepts for ``cls`` (its
    ``__init__``, ``**kwargs`` followed into the parents as the parser follows them)."""
    from jsonargparse._parameter_resolvers import get_signature_parameters

    return {p.name: p.annotation for p in get_signature_parameters(cls, None, logger=False)}


def progress_bar_should_update(bar: TQDMProgressBar, current: int, total: Any) -> bool:
    """Whether ``bar`` redraws at count ``current`` of ``total`` (its refresh rate; the
    last count always): ``TQDMProgressBar._should_update``, not public."""
    return bool(bar._should_update(current, total))


def progress_bar_leaves(bar: TQDMProgressBar) -> bool:
    """Whether ``bar`` keeps its line after an epoch (``TQDMProgressBar(leave=...)``,
    stored as the private ``_leave``)."""
    return bool(bar._leave)


class _PreloadedCheckpointIO(CheckpointIO):
    """A ``CheckpointIO`` that answers the first load of ``path`` with ``checkpoint``
    (already read) and passes everything else to ``inner``."""

    def __init__(self, inner: CheckpointIO, path: str | Path, checkpoint: dict[str, Any]) -> None:
        self.inner = inner
        self.path = Path(path).resolve()
        self._checkpoint: dict[str, Any] | None = checkpoint

    def load_checkpoint(
        self, path: Any, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        if self._checkpoint is not None and Path(path).resolve() == self.path:
            checkpoint, self._checkpoint = self._checkpoint, None  # handed over once
            return checkpoint
        return self.inner.load_checkpoint(
            path, map_location=map_location, weights_only=weights_only
        )

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None
    ) -> None:
        self.inner.save_checkpoint(checkpoint, path, storage_options=storage_options)

    def remove_checkpoint(self, path: Any) -> None:
        self.inner.remove_checkpoint(path)

    def teardown(self) -> None:
        self.inner.teardown()


@contextlib.contextmanager
def checkpoint_preloaded(
    trainer: pl.Trainer, path: str | Path | None, checkpoint: dict[str, Any] | None
) -> Iterator[None]:
    """Within the block, Lightning's restore of ``path`` gets ``checkpoint`` instead of
    reading the file again (nothing changes when either is ``None``)."""
    if path is None or checkpoint is None:
        yield
        return
    strategy = trainer.strategy
    inner = strategy.checkpoint_io
    strategy.checkpoint_io = _PreloadedCheckpointIO(inner, path, checkpoint)
    try:
        yield
    finally:
        strategy.checkpoint_io = inner


#: key of the run folder a checkpoint belongs to (its ``log_dir``), stored relative to
#: the checkpoint's own folder, so that a copied run folder keeps pointing at itself
RUN_FOLDER_KEY = "lightning_ex2_run_folder"


def checkpoint_run_folder(checkpoint: dict[str, Any], path: str | Path) -> Path | None:
    """The run folder (``log_dir``) the checkpoint read from ``path`` was written by,
    as :class:`SafeCheckpointIO` recorded it (``None``: not recorded)."""
    value = checkpoint.get(RUN_FOLDER_KEY)
    if not isinstance(value, str):
        return None
    return (Path(path).resolve().parent / value).resolve()


def _local(path: Any) -> bool:
    return "://" not in str(path)


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's ``TorchCheckpointIO`` that reads with ``weights_only=True`` (unless
    :attr:`trust`) and writes local files atomically in their own folder.

    Attributes:
        trust: the user's explicit opt-in (``--trust_checkpoint true``) to unpickle a
            checkpoint that needs more than tensors and plain values.
    """

    def __init__(self, trust: bool = False) -> None:
        super().__init__()
        self.trust = trust

    def load_checkpoint(
        self, path: Any, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        """``weights_only`` as Lightning passes it is ignored: only :attr:`trust` opts in."""
        if not _local(path):
            raise FileNotFoundError(f"checkpoint {path}: only local files are read")
        if not Path(path).is_file():
            raise FileNotFoundError(f"Checkpoint file not found: {path}")
        return load_torch(
            path, trust=self.trust, map_location=map_location or "cpu", what=f"checkpoint {path}"
        )

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None
    ) -> None:
        if not _local(path) or storage_options is not None:
            super().save_checkpoint(checkpoint, path, storage_options=storage_options)
            return
        run = checkpoint.get(RUN_FOLDER_KEY)
        if isinstance(run, str) and Path(run).is_absolute():  # relative to the file's folder
            folder = Path(path).resolve().parent
            checkpoint = {**checkpoint, RUN_FOLDER_KEY: os.path.relpath(run, folder)}
        save_torch(path, checkpoint)


def use_safe_checkpoint_io(trainer: pl.Trainer) -> SafeCheckpointIO | None:
    """Make :class:`SafeCheckpointIO` the trainer's checkpoint IO, unless the user
    configured a ``CheckpointIO`` plugin of their own (returned: ``None``)."""
    strategy = trainer.strategy
    current = strategy.checkpoint_io
    if isinstance(current, SafeCheckpointIO):
        return current
    if type(current) is not TorchCheckpointIO:
        return None
    safe = SafeCheckpointIO()
    strategy.checkpoint_io = safe
    return safe


class SafeLoadingModule(pl.LightningModule):
    """A ``LightningModule`` whose ``load_from_checkpoint`` reads the file as every
    other reader of the project does (:func:`lightning_ex2.trust.load_torch`): with
    ``weights_only=True`` passed explicitly (so ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``
    cannot turn it off), a file that needs full unpickling refused in one line unless
    ``trust_checkpoint=True``."""

    @classmethod
    def load_from_checkpoint(  # type: ignore[override]
        cls,
        checkpoint_path: Any,
        map_location: Any = None,
        hparams_file: Any = None,
        strict: bool | None = None,
        weights_only: bool | None = None,
        trust_checkpoint: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Lightning's ``load_from_checkpoint``; ``weights_only`` is ignored (only
        ``trust_checkpoint`` opts in to full unpickling)."""
        if not _local(checkpoint_path):
            raise ValueError(f"checkpoint {checkpoint_path}: only local files are read")
        load_torch(checkpoint_path, trust=trust_checkpoint, mmap=True)  # refuses in one line
        return super().load_from_checkpoint(
            checkpoint_path, map_location=map_location, hparams_file=hparams_file,
            strict=strict, weights_only=not trust_checkpoint, **kwargs,
        )  # fmt: skip
