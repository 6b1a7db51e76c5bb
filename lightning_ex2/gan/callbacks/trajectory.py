"""Sampling trajectories in a GAN's latent space: image grids, energy / D(G(z)) curves.

:class:`SamplingTrajectory` reproduces the trajectory figure of Samsonov et al. 2022
(arXiv 2111.02702, CIFAR-10 figure): the images ``G(z)`` of a few chains (rows) at successive
steps (columns), with the mean energy ``−log π(z)`` and the mean discriminator output
``D(G(z)) = sigmoid(d(G(z)))`` over the chains against the step. The figures themselves
(and the paper's energy-landscape figure) live in :mod:`lightning_ex2.output.figures`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger
from torch import Tensor

from lightning_ex2.gan.callbacks.fid import image_target
from lightning_ex2.output.figures import curves_figure, figure_to_array, trajectory_grid
from lightning_ex2.protocols import GANTarget, ImageTarget
from lightning_ex2.validation import check_int

__all__ = ["SamplingTrajectory"]


def _check_int(value: Any, name: str, minimum: int) -> int:
    return check_int(value, name, "SamplingTrajectory", minimum)


class SamplingTrajectory(pl.Callback):
    """Image grid of a few chains over steps, and energy / D(G(z)) curves, for GAN latent targets.

    Needs ``pl_module.target`` with ``decode(z [..., D]) -> [..., C, H, W]`` in ``[-1, 1]``;
    ``discriminator_logit(z) -> [...]`` is optional (without it no D(G(z)) curve).

    **Fit**: after every ``every_n_steps``-th training batch (rank zero) the positions of the
    tracked chains are kept as one column (at most ``max_snapshots``, then every other one is
    dropped) and, over the chains of the batch (at most ``max_curve_chains``), the mean energy
    ``−log π(z)`` (from ``pl_module.chain_log_prob``, free, or ``target.log_prob``) and the mean
    ``D(G(z)) = sigmoid(target.discriminator_logit(z))`` are logged as ``trajectory/energy`` and
    ``trajectory/dgz`` (``on_step``). The grid ``trajectory/images`` — rows = chains, columns =
    ``n_columns`` evenly spaced snapshots, oldest left — is logged at the end of every
    ``log_every_n_epochs``-th epoch (if set) and at the end of ``fit``. With several batches per
    epoch, choose ``every_n_steps`` a multiple of their number so that each column follows a move.

    **Predict**: from the draws ``samples [B, T, D]`` / ``log_prob [B, T]`` of ``predict_step``,
    the grid ``trajectory/predict_images`` (tracked chains × ``n_columns`` evenly spaced draws),
    and curves vs draw index (mean over all chains of this rank for the energy, over the tracked
    chains for D(G(z)), at most ``max_curve_points`` points) as the scalars
    ``trajectory/predict_energy`` / ``trajectory/predict_dgz`` and the figure
    ``trajectory/predict_curves``.

    Tracked chains: ``chains`` (global indices), default the first ``n_chains`` indices seen on
    rank zero. Only a :class:`~pytorch_lightning.loggers.TensorBoardLogger` receives images.

    Args:
        n_chains: rows of the grid when ``chains`` is not given.
        chains: explicit chain indices to follow.
        n_columns: columns of the grid.
        every_n_steps: snapshot / scalar period in training batches.
        log_every_n_epochs: also log the fit grid every this many epochs (``None``: only at the end).
        max_snapshots: memory cap on kept snapshots (``n_chains × D`` numbers each).
        max_curve_chains: chains per batch whose D(G(z)) is evaluated for the curve.
        max_curve_points: points of the predict curves.
    """

    def __init__(
        self,
        n_chains: int = 8,
        chains: Sequence[int] | None = None,
        n_columns: int = 10,
        every_n_steps: int = 10,
        log_every_n_epochs: int | None = None,
        max_snapshots: int = 1000,
        max_curve_chains: int = 256,
        max_curve_points: int = 200,
    ) -> None:
        super().__init__()
        self.n_chains = _check_int(n_chains, "n_chains", 1)
        self.chains = None if chains is None else [_check_int(c, "chains", 0) for c in chains]
        if self.chains is not None and not self.chains:
            raise ValueError("SamplingTrajectory: `chains` must name at least one chain")
        self.n_columns = _check_int(n_columns, "n_columns", 1)
        self.every_n_steps = _check_int(every_n_steps, "every_n_steps", 1)
        self.log_every_n_epochs = (
            None
            if log_every_n_epochs is None
            else _check_int(log_every_n_epochs, "log_every_n_epochs", 1)
        )
        self.max_snapshots = _check_int(max_snapshots, "max_snapshots", 2)
        self.max_curve_chains = _check_int(max_curve_chains, "max_curve_chains", 1)
        self.max_curve_points = _check_int(max_curve_points, "max_curve_points", 2)
        self._reset()

    def _reset(self) -> None:
        self._tracked: Tensor | None = None  # [R] chain indices
        self._lookup: Tensor | None = None  # chain index -> row of _current
        self._current: Tensor | None = None  # [R + 1, D]; row R collects untracked chains
        self._snapshots: list[Tensor] = []
        self._snapshot_steps: list[int] = []
        self._stride = 1  # keep every _stride-th snapshot after thinning
        self._n_batches = 0
        self._predict: list[dict[str, Tensor]] = []

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """No-op: snapshots are not checkpointed."""

    @property
    def snapshots(self) -> tuple[list[int], Tensor | None]:
        """``(steps, positions [R, S, D])`` of the fit snapshots kept so far."""
        if not self._snapshots:
            return [], None
        return list(self._snapshot_steps), torch.stack(self._snapshots, dim=1)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _target(pl_module: pl.LightningModule) -> ImageTarget:
        return image_target(pl_module, "SamplingTrajectory")

    def _choose(self, index: Tensor) -> Tensor:
        if self.chains is not None:
            return torch.tensor(self.chains, dtype=torch.long, device=index.device)
        return index.reshape(-1)[: self.n_chains].sort().values

    @staticmethod
    def _tensorboards(trainer: pl.Trainer) -> list[TensorBoardLogger]:
        return [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]

    @torch.no_grad()
    def _dgz(self, target: ImageTarget, z: Tensor) -> Tensor | None:
        if not isinstance(target, GANTarget):
            return None
        return torch.sigmoid(target.discriminator_logit(z).float())

    # ------------------------------------------------------------------ fit
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._reset()
        self._target(pl_module)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, *_: Any
    ) -> None:
        if not trainer.is_global_zero or not isinstance(outputs, Mapping):
            return
        x, index = outputs.get("x"), outputs.get("index")
        if not isinstance(x, Tensor) or not isinstance(index, Tensor) or x.ndim != 2:
            return
        x, index = x.detach(), index.detach().reshape(-1)
        if self._tracked is None:
            self._tracked = self._choose(index)
            self._current = x.new_zeros(self._tracked.numel() + 1, x.shape[1])
            # lookup[i] = row of chain i, R (the spare row) for untracked chains and, in the
            # last entry, for any index out of range; no host sync afterwards
            n_all = max(pl_module.n_chains, int(self._tracked.max()) + 1)
            self._lookup = torch.full(
                (n_all + 1,), self._tracked.numel(), dtype=torch.long, device=x.device
            )
            self._lookup[self._tracked.to(x.device)] = torch.arange(
                self._tracked.numel(), device=x.device
            )
        assert self._current is not None and self._lookup is not None
        rows = self._lookup[index.clamp(0, self._lookup.numel() - 1)]
        self._current.index_copy_(0, rows, x.to(self._current.dtype))
        self._n_batches += 1
        if (self._n_batches - 1) % self.every_n_steps:
            return
        step = int(trainer.global_step)
        self._add_snapshot(self._current[:-1].clone(), step)
        with torch.no_grad():
            target = self._target(pl_module)
            xs, ids = x[: self.max_curve_chains], index[: self.max_curve_chains]
            chain_lp = pl_module.chain_log_prob
            if chain_lp.shape[0] > int(ids.max()):
                energy = -chain_lp[ids].float().mean()
            else:
                energy = -target.log_prob(xs).float().mean()
            pl_module.log(
                "trajectory/energy",
                energy,
                on_step=True,
                on_epoch=False,
                batch_size=1,
                rank_zero_only=True,
            )
            dgz = self._dgz(target, xs)
            if dgz is not None:
                pl_module.log(
                    "trajectory/dgz",
                    dgz.mean(),
                    on_step=True,
                    on_epoch=False,
                    batch_size=1,
                    rank_zero_only=True,
                )

    def _add_snapshot(self, z: Tensor, step: int) -> None:
        self._snapshots.append(z)
        self._snapshot_steps.append(step)
        if len(self._snapshots) > self.max_snapshots:  # thin: keep every other snapshot
            self._snapshots = self._snapshots[::2]
            self._snapshot_steps = self._snapshot_steps[::2]

    def _columns(self, n: int) -> list[int]:
        k = min(self.n_columns, n)
        return sorted(set(np.linspace(0, n - 1, k).round().astype(int).tolist()))

    @torch.no_grad()
    def _log_grid(self, trainer: pl.Trainer, pl_module: pl.LightningModule, tag: str) -> None:
        loggers = self._tensorboards(trainer)
        if not loggers or not self._snapshots or not trainer.is_global_zero:
            return
        cols = self._columns(len(self._snapshots))
        z = torch.stack([self._snapshots[c] for c in cols], dim=1)  # [R, K, D]
        images = self._target(pl_module).decode(z)  # [R, K, C, H, W]
        grid = trajectory_grid(images).cpu()
        step = int(trainer.global_step)
        for logger in loggers:
            logger.experiment.add_image(tag, grid, global_step=step, dataformats="CHW")
            logger.experiment.add_text(
                f"{tag}/columns",
                "steps " + ", ".join(str(self._snapshot_steps[c]) for c in cols),
                global_step=step,
            )

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.log_every_n_epochs and (trainer.current_epoch + 1) % self.log_every_n_epochs == 0:
            self._log_grid(trainer, pl_module, "trajectory/images")

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._log_grid(trainer, pl_module, "trajectory/images")
        for logger in self._tensorboards(trainer):
            logger.experiment.flush()

    # ------------------------------------------------------------------ predict
    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._predict = []

    def on_predict_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, *_: Any
    ) -> None:
        if trainer.is_global_zero and isinstance(outputs, Mapping) and "samples" in outputs:
            keep = {
                k: outputs[k].detach() for k in ("index", "samples", "log_prob") if k in outputs
            }
            self._predict.append(keep)

    @torch.no_grad()
    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or not self._predict:
            return
        loggers = self._tensorboards(trainer)
        target = self._target(pl_module)
        index = torch.cat([o["index"].reshape(-1) for o in self._predict])
        samples = torch.cat([o["samples"] for o in self._predict])  # [B, T, D]
        log_prob = None
        if all("log_prob" in o for o in self._predict):
            log_prob = torch.cat([o["log_prob"] for o in self._predict])  # [B, T]
        self._predict = []
        if self.chains is not None:
            wanted = torch.tensor(self.chains, device=index.device)
            rows = (index[:, None] == wanted[None]).nonzero()[:, 0]
        else:
            rows = index.argsort()[: self.n_chains]
        if rows.numel() == 0:
            return
        n_draws = samples.shape[1]
        cols = torch.tensor(self._columns(n_draws), device=samples.device)
        tracked = samples.index_select(0, rows.to(samples.device))  # [R, T, D]
        step = int(trainer.global_step)
        grid = trajectory_grid(target.decode(tracked.index_select(1, cols))).cpu()
        points = torch.tensor(self._curve_points(n_draws), device=samples.device)
        if log_prob is not None:
            energy = -log_prob.index_select(1, points.to(log_prob.device)).float().mean(0)
        else:
            energy = -target.log_prob(samples.index_select(1, points)).float().mean(0)
        dgz = self._dgz(target, tracked.index_select(1, points))  # [R, P] or None
        dgz_mean = None if dgz is None else dgz.mean(0)
        steps = points.cpu().numpy()
        fig = curves_figure(
            steps,
            energy.cpu().double().numpy(),
            None if dgz_mean is None else dgz_mean.cpu().double().numpy(),
            title=f"{samples.shape[0]} chains (D(G(z)): {rows.numel()} tracked)",
        )
        curves = figure_to_array(fig)
        for logger in loggers:
            w = logger.experiment
            w.add_image("trajectory/predict_images", grid, global_step=step, dataformats="CHW")
            w.add_image("trajectory/predict_curves", curves, global_step=step, dataformats="HWC")
            for i, t in enumerate(steps.tolist()):
                w.add_scalar("trajectory/predict_energy", float(energy[i]), int(t))
                if dgz_mean is not None:
                    w.add_scalar("trajectory/predict_dgz", float(dgz_mean[i]), int(t))
            w.flush()

    def _curve_points(self, n: int) -> list[int]:
        k = min(self.max_curve_points, n)
        return sorted(set(np.linspace(0, n - 1, k).round().astype(int).tolist()))
