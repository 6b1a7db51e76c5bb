"""``SampleWriter``: gathers the draws of ``predict`` and writes the run's outputs.

Writes one output set under ``output_dir`` (see :class:`~lightning_ex2.io.OutputSet`:
built in a hidden staging folder, moved into place with ``summary.json`` last; the
files of a set are the names in :data:`lightning_ex2.io.SET_FILES`, and a new output
file is registered there):

* ``samples.npz``: ``samples`` ``(chain, draw, dim)`` in chain-index order and the
  run's dtype, ``log_prob`` ``(chain, draw)``, ``chain_index`` and every per-chain
  ``[C]`` field of the kernel's info (``accept_global``, ``accept_local``,
  ``particle_ess``, ...; NaN where a kernel has no such field; counts as integers);
* ``samples.nc``: the same draws with per-draw ``sample_stats`` in ArviZ's netCDF
  layout (:mod:`lightning_ex2.inference_data`);
* ``summary.json``: ArviZ's ESS/R-hat/MCSE and the convergence verdict
  (:func:`lightning_ex2.metrics.summary.diagnostics`), ``<info>_mean`` of every info
  field, the ``step_size``, EMD to exact samples (when the target has a sampler),
  sizes, wall time, kernel and target, and ``complete`` (false when a stop signal cut
  the run short: the draws made are kept);
* ``config.yaml``: the run's configuration, when the CLI gave it (:attr:`config_text`);
* ``scatter.png``, ``trace.png``, ``rank.png`` and, for ``2 <= dim <= 6``, ``pair.png``;

A run that fails the convergence rule ends with a ``RuntimeWarning``.

and logs the summary scalars and the figures to TensorBoard (``sample/...``): to the
trainer's ``TensorBoardLogger`` if it has one, else (the ``sample`` command, which
runs without the config's loggers and sets ``trainer.events_in_output_set``) to an
events file in the set itself (``events.out.tfevents.*``).
Multi-device runs gather every rank's chains first; rank 0 writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.loggers import TensorBoardLogger

from lightning_ex2 import interrupt
from lightning_ex2.callbacks.fid import ImageQualityMetrics
from lightning_ex2.inference_data import build_groups, save_netcdf
from lightning_ex2.io import OutputSet, save_json, save_npz, save_text
from lightning_ex2.kernels.base import COUNT_FIELDS
from lightning_ex2.metrics import summarize
from lightning_ex2.sampling import superchain_ids, warn_convergence
from lightning_ex2.targets.base import has_sampler

#: keys of a ``predict_step`` output that are not per-chain info
_DRAWS = ("index", "samples", "log_prob", "wall_seconds", "start")
#: prefix of the per-draw stats in the merged arrays (``draw/<name>`` ``[C, T]``)
_PER_DRAW = "draw/"
#: info fields always in samples.npz (NaN where the kernel has no such move)
_STANDARD = ("accept_global", "accept_local", "particle_ess")


def _gather(pl_module: pl.LightningModule, local: torch.Tensor) -> torch.Tensor:
    """All ranks' rows of ``local`` ``[B, ...]`` concatenated (uneven B allowed)."""
    trainer = pl_module.trainer
    if trainer.world_size == 1:
        return local
    n = torch.tensor([local.shape[0]], device=local.device)
    sizes = pl_module.all_gather(n).reshape(-1)
    width = int(sizes.max())
    padded = local.new_zeros((width, *local.shape[1:]))
    padded[: local.shape[0]] = local
    everything = pl_module.all_gather(padded)  # [world, width, ...]
    return torch.cat([everything[r, : int(sizes[r])] for r in range(len(sizes))])


def _info_names(outputs: list[dict[str, Any]]) -> list[str]:
    """Per-chain ``[B]`` tensor fields of the outputs, in first-seen order."""
    names: list[str] = list(_STANDARD)
    for o in outputs:
        for k, v in o.items():
            if k in _DRAWS or k in names or not isinstance(v, torch.Tensor):
                continue
            if v.ndim == 1 and v.shape[0] == o["index"].shape[0]:
                names.append(k)
    return names


class SampleWriter(Callback):
    """Collects ``predict_step`` outputs, writes ``samples.npz`` and ``summary.json``.

    Args:
        output_dir: folder of the outputs (default: ``<log_dir>/samples``; the
            ``sample`` command sets it: :func:`lightning_ex2.trainer.default_output_dir`).
        n_reference: exact target samples for the EMD (when the target has ``sample``).
        save_figures: also write and log the scatter and trace figures.
        scorers: callables ``(trainer, pl_module, samples [B, T, D]) -> dict`` scoring this
            rank's draws (collective), e.g. ``ImageQualityMetrics(...).scorer``; their
            results go into ``summary.json`` as ``image_metrics``.
        overwrite: replace a previous output set in ``output_dir`` (as a whole).
    """

    def __init__(
        self,
        output_dir: str | None = None,
        n_reference: int = 2000,
        save_figures: bool = True,
        scorers: Sequence[Any] = (),
        overwrite: bool = False,
    ) -> None:
        super().__init__()
        self.scorers = list(scorers)
        self.output_dir = output_dir
        self.n_reference = n_reference
        self.save_figures = save_figures
        self.overwrite = overwrite
        #: the run's config as YAML (set by the CLI), written as ``config.yaml``
        self.config_text: str | None = None
        self.summary: dict[str, Any] | None = None
        #: whether the last run kept all its draws (``None`` before a run)
        self.complete: bool | None = None
        #: the folder written by the last run (``None`` if nothing was written)
        self.written: Path | None = None
        #: whether the last run's set replaced a complete previous set (``--overwrite``)
        self.replaced_complete = False
        self._outputs: list[dict[str, Any]] = []
        self._set: OutputSet | None = None

    def output_set(self, trainer: pl.Trainer) -> OutputSet:
        """The destination of this run's outputs (checked, not yet created)."""
        return OutputSet(self.resolve_dir(trainer), overwrite=self.overwrite)

    def resolve_dir(self, trainer: pl.Trainer) -> Path:
        """``output_dir``, or ``<log_dir>/samples``."""
        if self.output_dir is not None:
            return Path(self.output_dir)
        return Path(trainer.log_dir or trainer.default_root_dir) / "samples"

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.summary = self.complete = self.written = None
        self.replaced_complete = False
        if trainer.is_global_zero:
            self.output_set(trainer).check()  # before any step

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # The image-metrics callback's scorer scores the draws (a scorer, not a callback call).
        for cb in trainer.callbacks:
            wanted = isinstance(cb, ImageQualityMetrics) and cb.evaluate_predict
            if wanted and cb.scorer not in self.scorers:
                self.scorers.append(cb.scorer)

    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._outputs = []

    def on_predict_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._outputs.append(outputs)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if self._set is not None:
            self._set.abort()
            self._set = None

    def _local(self) -> dict[str, torch.Tensor]:
        """This rank's draws, cut to the fewest draws of any block (a stopped run)."""
        n_draws = min(int(o["samples"].shape[1]) for o in self._outputs)
        local = {
            "index": torch.cat([o["index"] for o in self._outputs]),
            "samples": torch.cat([o["samples"][:, :n_draws] for o in self._outputs]),
            "log_prob": torch.cat([o["log_prob"][:, :n_draws] for o in self._outputs]),
        }
        like = local["samples"]
        if all("start" in o for o in self._outputs):
            local["start"] = torch.cat([o["start"] for o in self._outputs])
        for name in dict.fromkeys(k for o in self._outputs for k in o.get("draw_info", {})):
            local[_PER_DRAW + name] = torch.cat(
                [
                    o["draw_info"][name][:, :n_draws].to(like.dtype)
                    if name in o.get("draw_info", {})
                    else like.new_full(o["log_prob"][:, :n_draws].shape, torch.nan)
                    for o in self._outputs
                ]
            )
        for name in _info_names(self._outputs):
            local[name] = torch.cat(
                [
                    o[name].to(like.dtype)
                    if name in o
                    else torch.full_like(o["index"], torch.nan, dtype=like.dtype)
                    for o in self._outputs
                ]
            )
        return local

    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._outputs:
            return
        local = self._local()
        device = local["samples"].device
        # every rank keeps the same number of draws: the fewest of any rank
        n_draws = int(
            _gather(pl_module, torch.tensor([local["samples"].shape[1]], device=device)).min()
        )
        for key in ("samples", "log_prob", *(k for k in local if k.startswith(_PER_DRAW))):
            local[key] = local[key][:, :n_draws]
        wall = torch.tensor([max(o["wall_seconds"] for o in self._outputs)], device=device)
        merged = {k: _gather(pl_module, v) for k, v in local.items()}
        wall_max = float(_gather(pl_module, wall).max())
        image_metrics: dict[str, Any] = {}
        for scorer in self.scorers:  # FID/IS: a collective, so on every rank
            image_metrics.update(scorer(trainer, pl_module, local["samples"]))
        cfg = pl_module.sampling
        self.complete = n_draws == cfg.n_steps // cfg.thin
        if not trainer.is_global_zero or n_draws == 0:
            return  # a run stopped before its first kept draw leaves nothing new
        # Ranks own disjoint chains (ChainShardSampler): sorting gives chain order.
        order = torch.argsort(merged["index"])
        # the run's dtype (float32 stays float32); float64 copies for the statistics
        arrays = {k: v[order].detach().cpu().numpy() for k, v in merged.items()}
        draw_stats = {
            k[len(_PER_DRAW) :]: arrays.pop(k) for k in list(arrays) if k.startswith(_PER_DRAW)
        }
        starts = arrays.pop("start", None)
        samples = arrays["samples"].astype(np.float64)
        target = pl_module.target
        reference = reference2 = None
        if has_sampler(target):
            g = torch.Generator(device=pl_module.device).manual_seed(12345)
            with torch.no_grad():
                reference = target.sample(self.n_reference, generator=g).cpu().double().numpy()
                reference2 = target.sample(self.n_reference, generator=g).cpu().double().numpy()
        names = [k for k in arrays if k not in _DRAWS]
        for k in names:  # counts as integers, rates in the run's dtype
            if k in COUNT_FIELDS:
                arrays[k] = np.rint(arrays[k]).astype(np.int64)
        info = {k: arrays[k] for k in names if not np.isnan(arrays[k]).all()}
        superchains = None if starts is None else superchain_ids(torch.from_numpy(starts))
        summary = summarize(samples, info, reference, reference2, superchains=superchains)
        for name, value in info.items():  # every info field: rates averaged, counts summed
            if name in COUNT_FIELDS:
                summary[name] = int(np.nansum(value))
            else:
                summary.setdefault(f"{name}_mean", float(np.nanmean(value)))
        summary.update(
            n_steps=cfg.n_steps,
            burn_in=cfg.burn_in,
            thin=cfg.thin,
            complete=self.complete,
            stopped_by=None if self.complete else interrupt.requested(),
            wall_seconds=wall_max,
            world_size=trainer.world_size,
            kernel=type(pl_module.kernel).__name__,
            target=type(target).__name__,
            module=type(pl_module).__name__,
            seed=pl_module.seed,
        )
        if "step_size" in draw_stats:  # the frozen step size (the chains' mean if per chain)
            summary["step_size"] = float(np.nanmean(draw_stats["step_size"][:, 0]))
        if image_metrics:
            summary["image_metrics"] = image_metrics
        # Target diagnostics hook (GAN latent targets: lightning_ex2/gan/diagnostics.py): the
        # target's own dict, merged under one key; other targets have no such method.
        diagnose = getattr(target, "target_diagnostics", None)
        if callable(diagnose):
            summary["target_diagnostics"] = diagnose()
        self._set = output = self.output_set(trainer)
        staging = output.begin()
        save_npz(
            staging / "samples.npz",
            samples=arrays["samples"],
            log_prob=arrays["log_prob"],
            chain_index=arrays["index"].astype(np.int64),
            **{k: arrays[k] for k in names},
        )
        attrs = {k: summary[k] for k in ("kernel", "target", "module", "seed")}
        groups = build_groups(
            arrays["samples"], arrays["log_prob"], draw_stats, attrs,
            chain_index=arrays["index"].astype(np.int64),
            dim_names=getattr(target, "dim_names", None),
        )  # fmt: skip
        save_netcdf(staging / "samples.nc", groups)
        if self.config_text is not None:
            save_text(staging / "config.yaml", self.config_text)
        self._log(trainer, staging, samples, reference, summary)
        save_json(staging / "summary.json", summary)  # last: it marks a complete set
        self.written = output.publish()
        self.replaced_complete = output.replaced_complete
        self._set = None
        self.summary = summary
        # attributed to this line, not to the Lightning hook that called it
        warn_convergence(summary, f"sample ({self.written})", stacklevel=2)

    def _log(
        self,
        trainer: pl.Trainer,
        out: Path,
        samples: np.ndarray,
        reference: np.ndarray | None,
        summary: dict[str, Any],
    ) -> None:
        logger = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
        # the sample command runs without loggers: its TensorBoard events join the set
        own = logger is None and getattr(trainer, "events_in_output_set", False)
        tb = logger.experiment if logger is not None else (_set_events(out) if own else None)
        try:
            self._log_to(tb, out, samples, reference, summary, int(trainer.global_step))
        finally:
            if own and tb is not None:
                tb.close()

    def _log_to(
        self,
        tb: Any,
        out: Path,
        samples: np.ndarray,
        reference: np.ndarray | None,
        summary: dict[str, Any],
        step: int,
    ) -> None:
        if tb is not None:
            for key, value in summary.items():
                numeric = isinstance(value, int | float) and not isinstance(value, bool)
                if numeric and np.isfinite(value):
                    tb.add_scalar(f"sample/{key}", value, step)
            if isinstance(summary.get("converged"), bool):
                tb.add_scalar("sample/converged", float(summary["converged"]), step)
        if not self.save_figures:
            return
        from lightning_ex2.callbacks.plots import (
            pair_figure,
            rank_figure,
            save_figure,
            scatter_figure,
            trace_figure,
        )

        figures = {
            "scatter": scatter_figure(
                samples.reshape(-1, samples.shape[-1]),
                reference,
                title=f"{summary['kernel']} on {summary['target']}",
            ),
            "trace": trace_figure(samples),
            "rank": rank_figure(samples),
        }
        if 2 <= samples.shape[-1] <= 6:
            figures["pair"] = pair_figure(samples)
        for name, fig in figures.items():
            save_figure(fig, out / f"{name}.png")
            if tb is not None:
                tb.add_figure(f"sample/{name}", fig, step)
        if tb is not None:
            tb.flush()


def _set_events(folder: Path) -> Any:
    """A TensorBoard writer whose events file is in ``folder`` (an output set's staging
    folder; ``events.out.tfevents.*`` is in :data:`lightning_ex2.io.SET_PATTERNS`), or
    ``None`` without TensorBoard."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(folder))
