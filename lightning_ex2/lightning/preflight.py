"""What the trainer checks before a run (:func:`run_checks`, running the pure checks of
:mod:`lightning_ex2.checks`; :func:`check_fresh_folder`: one run per log folder), and
where a run's files go (:func:`default_output_dir`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import pytorch_lightning as pl
import yaml
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_warn
from torch import Tensor

from lightning_ex2.checks import (
    check_checkpoint,
    check_model_data,
    model_spec,
    setting_tensors,
)
from lightning_ex2.errors import UserError
from lightning_ex2.lightning.compat import checkpoint_run_folder, slurm_auto_resume_checkpoint

#: ``ckpt_path`` values Lightning resolves itself (no file to check)
LIGHTNING_CKPT_NAMES = ("last", "best", "hpc", "registry")


class Preflight(NamedTuple):
    """What :func:`run_checks` found.

    Attributes:
        spec: the configured model's :func:`~lightning_ex2.checks.model_spec`.
        ckpt_path: the checkpoint file checked (``None``: none, or one Lightning names).
        checkpoint: that checkpoint as read (only with ``keep_checkpoint``), with the
            config's setting tensors in place when ``--override_ckpt`` let differences
            through: ready for Lightning to restore from.
        keep_target: without ``keep_checkpoint``, the config's setting tensors to put
            back after Lightning restored the checkpoint (``None``: nothing to put back).
        run_folder: the run folder that wrote the checkpoint, as the checkpoint records
            it (:func:`~lightning_ex2.lightning.compat.checkpoint_run_folder`; ``None``:
            no checkpoint, or not recorded).
    """

    spec: dict[str, str]
    ckpt_path: str | None = None
    checkpoint: dict[str, Any] | None = None
    keep_target: dict[str, Tensor] | None = None
    run_folder: Path | None = None


def slurm_resume_path(trainer: pl.Trainer) -> str | None:
    """The checkpoint Lightning resumes from by itself under SLURM (``ckpt_path``
    unset, an ``hpc_ckpt_<n>.ckpt`` of its auto-requeue in ``default_root_dir``)."""
    from lightning_fabric.plugins.environments import SLURMEnvironment

    if not SLURMEnvironment.detect():
        return None
    return slurm_auto_resume_checkpoint(trainer.default_root_dir)


def run_checks(
    trainer: pl.Trainer,
    model: pl.LightningModule,
    datamodule: Any,
    ckpt_path: str | None,
    *,
    override_ckpt: bool = False,
    keep_checkpoint: bool = False,
    trust_checkpoint: bool = False,
) -> Preflight:
    """The checks run before any step.

    Args:
        keep_checkpoint: return the checkpoint as read (to hand it to Lightning, which
            then does not read the file again); else it is dropped here.
        trust_checkpoint: the user's opt-in to unpickle a checkpoint in full
            (:func:`lightning_ex2.trust.load_torch`).

    Raises:
        UserError: naming the checkpoint, field or option to change.
    """
    check_model_data(model, datamodule)
    spec = model_spec(model)
    if ckpt_path is None:
        ckpt_path = slurm_resume_path(trainer)  # Lightning will resume from it
    if ckpt_path is None or ckpt_path in LIGHTNING_CKPT_NAMES:
        return Preflight(spec)
    ckpt, diffs = check_checkpoint(
        model, ckpt_path, override=override_ckpt, mmap=not keep_checkpoint,
        trust=trust_checkpoint, spec=spec,
    )  # fmt: skip
    run = checkpoint_run_folder(ckpt, ckpt_path)
    if not diffs:
        return Preflight(spec, ckpt_path, ckpt if keep_checkpoint else None, run_folder=run)
    rank_zero_warn(f"--override_ckpt: running the config's model, not the checkpoint's: {diffs}")
    ours = {k: v.detach().clone() for k, v in setting_tensors(model).items()}
    if not keep_checkpoint:
        return Preflight(spec, ckpt_path, None, ours, run_folder=run)
    state = ckpt["state_dict"]
    state.update({k: v for k, v in ours.items() if k in state})
    return Preflight(spec, ckpt_path, ckpt, run_folder=run)


def default_output_dir(trainer: pl.Trainer, ckpt_path: str | None) -> Path:
    """``sample``'s output folder without ``--output_dir``: ``samples`` in the fit run's
    log folder (the checkpoint's ``<log_dir>/checkpoints/..``), else in
    ``trainer.default_root_dir``; never a new log version."""
    if ckpt_path is not None and ckpt_path not in LIGHTNING_CKPT_NAMES:
        folder = Path(ckpt_path).parent
        return (folder.parent if folder.name == "checkpoints" else folder) / "samples"
    return Path(trainer.default_root_dir) / "samples"


def untrained(model: Any) -> list[str]:
    """What ``sample`` without a checkpoint runs as configured, in words."""
    parts = []
    if any(p.requires_grad for p in model.kernel.parameters()):
        flow = any("Flow" in type(m).__name__ for m in model.kernel.modules())
        parts.append(f"an untrained {'flow' if flow else 'proposal'}")
    if model.step_size is not None:
        parts.append("the initial step size, not adapted")
    parts.append("chains fresh from their initial points")
    return parts


def checkpoint_dirs(trainer: pl.Trainer) -> list[Path]:
    """The folders the trainer's ``ModelCheckpoint`` callbacks write into."""
    dirs = []
    for cb in trainer.checkpoint_callbacks:
        if isinstance(cb, ModelCheckpoint):
            root = cb.dirpath or Path(trainer.log_dir or trainer.default_root_dir) / "checkpoints"
            dirs.append(Path(root))
    return dirs


def check_fresh_folder(
    trainer: pl.Trainer,
    ckpt_path: str | None,
    config_text: str | None,
    created: float,
    source_run: Path | None = None,
) -> None:
    """One run per folder: ``fit`` writes into a log/checkpoint folder of its own.

    * ``--ckpt_path`` (a resume): the run folder (``trainer.log_dir``) is the one that
      wrote the checkpoint (``source_run``, recorded in the checkpoint relative to its
      own folder; for a checkpoint without the record, the folder above its
      ``checkpoints`` folder), or the run folder and the checkpoint folders are new;
      anything else is refused, naming both. A ``ModelCheckpoint.dirpath`` fixed in the
      config is no way around it: it already holds the other run's checkpoints.
    * No ``--ckpt_path``: the folder is new; or it holds checkpoints (refused: resume
      from the newest); or it holds only the ``config.yaml`` of a run that left no
      checkpoint (killed before its first one): the same config (``config_text``)
      restarts it there (its TensorBoard events and ``hparams.yaml`` older than
      ``created`` are removed), another is refused.
    """
    if ckpt_path in LIGHTNING_CKPT_NAMES:
        return
    log_dir = Path(trainer.log_dir) if trainer.log_dir else None
    config = log_dir / "config.yaml" if log_dir is not None else None
    has_config = config is not None and config.is_file()
    dirs = checkpoint_dirs(trainer)
    ckpts = sorted(
        (p for d in dirs if d.is_dir() for p in d.glob("*.ckpt")),
        key=lambda p: p.stat().st_mtime,
    )
    if ckpt_path is not None:
        source = Path(ckpt_path).resolve().parent
        if source_run is None and source.name == "checkpoints":
            source_run = source.parent  # written before runs recorded their folder
        if source_run is not None and log_dir is not None and source_run == log_dir.resolve():
            return  # resuming in its own folder
        if not (has_config or ckpts):
            return  # continuing it in a new folder
        owner = source_run if source_run is not None else source
        where = (
            f"the run folder {log_dir} holds another run"
            if has_config
            else f"its checkpoint folder {ckpts[-1].parent} already holds checkpoints (a "
            "ModelCheckpoint.dirpath shared by runs cannot take a second one)"
        )
        raise UserError(
            f"--ckpt_path {ckpt_path} is a checkpoint of the run in {owner}, but {where}; "
            "resume in the checkpoint's own folder (the same "
            "--trainer.logger.init_args.version) or in a new one"
        )
    if slurm_resume_path(trainer) is not None:
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
    try:
        same = config_text is not None and yaml.safe_load(config.read_text()) == yaml.safe_load(
            config_text
        )
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
    if trainer.is_global_zero:
        for p in log_dir.iterdir():
            dead = p.name.startswith("events.out.tfevents.") or p.name == "hparams.yaml"
            if dead and p.is_file() and p.stat().st_mtime < created:
                p.unlink(missing_ok=True)
    rank_zero_warn(
        f"fit: restarting the run in {log_dir} from step 0: it left no checkpoint "
        "(stopped before its first one)"
    )
