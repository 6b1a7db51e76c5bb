"""``SampleWriter``: collects the draws of ``predict`` and hands them to the output set.

The writer of one ``sample`` run is built by
:meth:`lightning_ex2.lightning.trainer.Ex2Trainer.sample` with the run's
:class:`~lightning_ex2.output.writer.SamplePlan` (the checked output set, the config
text, the scorers, the run's lengths). It only collects: ``predict_step``'s outputs
of this rank, every rank's chains gathered at the end of the epoch (multi-device runs:
a collective; the scorers, e.g. FID, run on every rank), and on rank 0 the pure
:func:`~lightning_ex2.output.writer.write_output_set` writes the set and returns a
:class:`~lightning_ex2.output.writer.SampleResult`, which the trainer takes from
:attr:`SampleWriter.result` (the one value the run hands back).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.loggers import TensorBoardLogger

from lightning_ex2 import interrupt
from lightning_ex2.lightning.data import gather_rows
from lightning_ex2.output.writer import (
    Draws,
    OutputOptions,
    RunMeta,
    SamplePlan,
    SampleResult,
    write_output_set,
)

#: keys of a ``predict_step`` output that are not per-chain info
_DRAWS = ("index", "samples", "log_prob", "wall_seconds", "start")
#: prefix of the per-draw stats in the merged arrays (``draw/<name>`` ``[C, T]``)
_PER_DRAW = "draw/"
#: info fields always in samples.npz (NaN where the kernel has no such move)
_STANDARD = ("accept_global", "accept_local", "particle_ess")


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


@runtime_checkable
class ScoresSamples(Protocol):
    """A callback whose scorer also scores the draws of ``sample`` (``None``: it does not);
    the trainer adds it to the run's :class:`OutputOptions` (e.g. the GAN image metrics)."""

    @property
    def sample_scorer(self) -> Any: ...


class SampleWriter(Callback):
    """Collects ``predict_step`` outputs of one ``sample`` run (see the module docstring).

    Args:
        options: the output options (:class:`~lightning_ex2.output.writer.OutputOptions`) of
            the ``sample`` runs of a trainer that has this writer in ``callbacks``.
        plan: the run's plan (given by the trainer to the writer it builds for the run);
            without one the hooks collect nothing.
    """

    def __init__(self, options: OutputOptions | None = None, plan: SamplePlan | None = None):
        super().__init__()
        self.options = options if options is not None else OutputOptions()
        self.plan = plan
        #: what the run wrote (``None`` until the end of its epoch)
        self.result: SampleResult | None = None
        self._outputs: list[dict[str, Any]] = []

    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._outputs = []
        self.result = None

    def on_predict_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self.plan is not None:
            self._outputs.append(outputs)

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
        plan = self.plan
        if plan is None or not self._outputs:
            return
        local = self._local()
        device = local["samples"].device
        # every rank keeps the same number of draws: the fewest of any rank
        n_draws = int(
            gather_rows(pl_module, torch.tensor([local["samples"].shape[1]], device=device)).min()
        )
        for key in ("samples", "log_prob", *(k for k in local if k.startswith(_PER_DRAW))):
            local[key] = local[key][:, :n_draws]
        wall = torch.tensor([max(o["wall_seconds"] for o in self._outputs)], device=device)
        merged = {k: gather_rows(pl_module, v) for k, v in local.items()}
        wall_max = float(gather_rows(pl_module, wall).max())
        image_metrics: dict[str, Any] = {}
        for scorer in plan.options.scorers:  # FID/IS: a collective, so on every rank
            image_metrics.update(scorer(trainer, pl_module, local["samples"]))
        self.result = SampleResult(None, None, n_draws == plan.n_draws, False)
        if n_draws == 0:
            return  # a run stopped before its first kept draw leaves nothing new
        if not trainer.is_global_zero:
            # wait for rank 0's set: a rank that ended first (e.g. on a stop signal, exit
            # 143) would make the launcher kill rank 0 in the middle of writing it
            trainer.strategy.barrier("lightning-ex2-set-written")
            return
        try:
            self._write(trainer, pl_module, plan, merged, n_draws, wall_max, image_metrics)
        finally:
            trainer.strategy.barrier("lightning-ex2-set-written")

    def _write(self, trainer, pl_module, plan, merged, n_draws, wall_max, image_metrics) -> None:  # type: ignore[no-untyped-def]
        """Rank 0: the merged draws of every rank as one output set."""
        # Ranks own disjoint chains (ChainShardSampler): sorting gives chain order.
        order = torch.argsort(merged["index"])
        # the run's dtype (float32 stays float32)
        arrays = {k: v[order].detach().cpu().numpy() for k, v in merged.items()}
        draws = Draws(
            samples=arrays.pop("samples"),
            log_prob=arrays.pop("log_prob"),
            chain_index=arrays.pop("index").astype("int64"),
            starts=arrays.pop("start", None),
            draw_stats={
                k[len(_PER_DRAW) :]: arrays.pop(k) for k in list(arrays) if k.startswith(_PER_DRAW)
            },
            info=arrays,
            wall_seconds=wall_max,
            world_size=trainer.world_size,
            image_metrics=image_metrics,
        )
        meta = RunMeta(
            kernel=type(pl_module.kernel).__name__,
            target=type(pl_module.target).__name__,
            module=type(pl_module).__name__,
            seed=pl_module.seed,
            device=pl_module.device,
            algorithm=pl_module.algorithm,
        )
        logger = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
        self.result = write_output_set(
            draws, plan, pl_module.target, meta,
            tb=None if logger is None else logger.experiment,
            step=int(trainer.global_step), stopped_by=interrupt.requested(),
        )  # fmt: skip
