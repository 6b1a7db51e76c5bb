"""A progress bar over the whole run instead of one bar per (one-step) epoch."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar

from lightning_ex2.lightning.compat import progress_bar_leaves, progress_bar_should_update
from lightning_ex2.lightning.module import MCMCSampler


class SweepProgressBar(TQDMProgressBar):
    """TQDM bar over the whole run: MCMC steps (``max_steps`` or ``max_epochs`` sweeps)
    for samplers, batches for other modules (GAN training).

    An epoch of the chain DataModule is one sweep (often a single training
    step), so Lightning's per-epoch bar would restart at every step.
    """

    def __init__(self, refresh_rate: int = 1, process_position: int = 0, leave: bool = False):
        super().__init__(refresh_rate, process_position, leave)
        #: batches of one epoch of a non-sampler module, as first seen (0: not yet)
        self._per_epoch = 0

    @staticmethod
    def _counts_moves(pl_module: pl.LightningModule) -> bool:
        """MCMC modules count one global step per batch (a move); GANs count two."""
        return isinstance(pl_module, MCMCSampler)

    def _batches_done(self, trainer: pl.Trainer, batch_idx: int = -1) -> int:
        """Steps of the run done: MCMC moves (``global_step``) for samplers; for other
        modules whole epochs before this one (their size as first seen: Lightning
        reports a smaller or zero count for an epoch that ``max_steps`` cuts short),
        plus this one's batches."""
        if self._counts_moves(trainer.lightning_module):
            return int(trainer.global_step)
        per_epoch = self.total_train_batches
        if isinstance(per_epoch, int) and per_epoch > 0 and not self._per_epoch:
            self._per_epoch = per_epoch
        return trainer.current_epoch * self._per_epoch + batch_idx + 1

    def _run_total(self, trainer: pl.Trainer) -> int | None:
        per_epoch = self.total_train_batches
        if not isinstance(per_epoch, int):
            return None
        totals = []
        moves = self._counts_moves(trainer.lightning_module)
        if moves and trainer.max_steps is not None and trainer.max_steps > 0:
            totals.append(trainer.max_steps)
        if trainer.max_epochs is not None and trainer.max_epochs > 0:
            totals.append(trainer.max_epochs * per_epoch)
        return min(totals) if totals else None

    def on_train_epoch_start(self, trainer: pl.Trainer, *_: Any) -> None:
        bar = self.train_progress_bar
        if bar.total is None or bar.n == 0 or progress_bar_leaves(self):
            total = self._run_total(trainer)
            bar.reset(total=total)
            done = self._batches_done(trainer)
            bar.n = bar.initial = min(done, total or done)
            bar.refresh()
        moves = self._counts_moves(trainer.lightning_module)
        bar.set_description("Fit (MCMC steps)" if moves else "Fit (batches)")

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        bar = self.train_progress_bar
        n = self._batches_done(trainer, batch_idx)
        if bar is not None and progress_bar_should_update(self, n, bar.total):
            bar.n = n
            bar.refresh()
            bar.set_postfix(self.get_metrics(trainer, pl_module))

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.train_progress_bar.disable:
            self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module))

    # ``sample`` shows its own per-step bar; Lightning's one-batch predict bar adds nothing.
    def on_predict_start(self, *_: Any) -> None:
        pass

    def on_predict_batch_start(self, *_: Any, **__: Any) -> None:
        pass

    def on_predict_batch_end(self, *_: Any, **__: Any) -> None:
        pass

    def on_predict_end(self, *_: Any) -> None:
        pass
