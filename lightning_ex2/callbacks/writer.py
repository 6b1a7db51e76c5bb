"""``SampleWriter``: gathers the draws of ``predict`` and writes the run's outputs.

Writes, atomically, under ``output_dir``:

* ``samples.npz``: ``samples`` ``(chain, draw, dim)`` in chain-index order,
  ``log_prob`` ``(chain, draw)``, per-chain ``accept_global``/``accept_local``
  (NaN where the kernel has no such move), ``particle_ess`` and ``chain_index``;
* ``summary.json``: ESS, R-hat, acceptance, EMD to exact samples (when the
  target has a sampler), sizes, wall time, kernel and target;
* ``scatter.png`` and ``trace.png``;

and logs the summary scalars and the figures to TensorBoard (``sample/...``).
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

from lightning_ex2.callbacks.fid import ImageQualityMetrics
from lightning_ex2.io import save_json, save_npz
from lightning_ex2.metrics import summarize
from lightning_ex2.targets.base import has_sampler

_INFO = ("accept_global", "accept_local", "particle_ess")


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


class SampleWriter(Callback):
    """Collects ``predict_step`` outputs, writes ``samples.npz`` and ``summary.json``.

    Args:
        output_dir: folder of the outputs (default: ``<log_dir>/samples``).
        n_reference: exact target samples for the EMD (when the target has ``sample``).
        save_figures: also write and log the scatter and trace figures.
        scorers: callables ``(trainer, pl_module, samples [B, T, D]) -> dict`` scoring this
            rank's draws (collective), e.g. ``ImageQualityMetrics(...).scorer``; their
            results go into ``summary.json`` as ``image_metrics``.
    """

    def __init__(
        self,
        output_dir: str | None = None,
        n_reference: int = 2000,
        save_figures: bool = True,
        scorers: Sequence[Any] = (),
    ) -> None:
        super().__init__()
        self.scorers = list(scorers)
        self.output_dir = output_dir
        self.n_reference = n_reference
        self.save_figures = save_figures
        self.summary: dict[str, Any] | None = None
        self._outputs: list[dict[str, Any]] = []

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

    def _resolve_dir(self, trainer: pl.Trainer) -> Path:
        if self.output_dir is not None:
            return Path(self.output_dir)
        return Path(trainer.log_dir or trainer.default_root_dir) / "samples"

    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._outputs:
            return
        local: dict[str, torch.Tensor] = {
            "index": torch.cat([o["index"] for o in self._outputs]),
            "samples": torch.cat([o["samples"] for o in self._outputs]),
            "log_prob": torch.cat([o["log_prob"] for o in self._outputs]),
        }
        n_local = local["index"].numel()
        for name in _INFO:
            if all(name in o for o in self._outputs):
                local[name] = torch.cat([o[name] for o in self._outputs])
            else:
                local[name] = torch.full(
                    (n_local,),
                    torch.nan,
                    device=local["samples"].device,
                    dtype=local["samples"].dtype,
                )
        wall = torch.tensor(
            [max(o["wall_seconds"] for o in self._outputs)], device=local["samples"].device
        )
        merged = {k: _gather(pl_module, v) for k, v in local.items()}
        wall_max = float(_gather(pl_module, wall).max())
        image_metrics: dict[str, Any] = {}
        for scorer in self.scorers:  # FID/IS: a collective, so on every rank
            image_metrics.update(scorer(trainer, pl_module, local["samples"]))
        if not trainer.is_global_zero:
            return
        # Ranks own disjoint chains (ChainShardSampler): sorting gives chain order.
        order = torch.argsort(merged["index"])
        arrays = {k: v[order].detach().cpu().double().numpy() for k, v in merged.items()}
        samples = arrays["samples"]
        cfg = pl_module.sampling
        target = pl_module.target
        reference = reference2 = None
        if has_sampler(target):
            g = torch.Generator(device=pl_module.device).manual_seed(12345)
            with torch.no_grad():
                reference = target.sample(self.n_reference, generator=g).cpu().double().numpy()
                reference2 = target.sample(self.n_reference, generator=g).cpu().double().numpy()
        info = {k: arrays[k] for k in _INFO if not np.isnan(arrays[k]).all()}
        summary = summarize(samples, info, reference, reference2)
        summary.update(
            n_steps=cfg.n_steps,
            burn_in=cfg.burn_in,
            thin=cfg.thin,
            wall_seconds=wall_max,
            world_size=trainer.world_size,
            kernel=type(pl_module.kernel).__name__,
            target=type(target).__name__,
            module=type(pl_module).__name__,
            seed=pl_module.seed,
        )
        if image_metrics:
            summary["image_metrics"] = image_metrics
        out = self._resolve_dir(trainer)
        save_npz(
            out / "samples.npz",
            samples=samples.astype(np.float32) if samples.dtype != np.float64 else samples,
            log_prob=arrays["log_prob"],
            chain_index=arrays["index"].astype(np.int64),
            **{k: arrays[k] for k in _INFO},
        )
        save_json(out / "summary.json", summary)
        self.summary = summary
        self._log(trainer, out, samples, reference, summary)

    def _log(
        self,
        trainer: pl.Trainer,
        out: Path,
        samples: np.ndarray,
        reference: np.ndarray | None,
        summary: dict[str, Any],
    ) -> None:
        tb = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
        step = int(trainer.global_step)
        if tb is not None:
            for key, value in summary.items():
                numeric = isinstance(value, int | float) and not isinstance(value, bool)
                if numeric and np.isfinite(value):
                    tb.experiment.add_scalar(f"sample/{key}", value, step)
        if not self.save_figures:
            return
        from lightning_ex2.callbacks.plots import save_figure, scatter_figure, trace_figure

        figures = {
            "scatter": scatter_figure(
                samples.reshape(-1, samples.shape[-1]),
                reference,
                title=f"{summary['kernel']} on {summary['target']}",
            ),
            "trace": trace_figure(samples),
        }
        for name, fig in figures.items():
            save_figure(fig, out / f"{name}.png")
            if tb is not None:
                tb.experiment.add_figure(f"sample/{name}", fig, step)
        if tb is not None:
            tb.experiment.flush()
