"""``Ex2Trainer``: a Lightning ``Trainer`` with a ``sample`` command."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ProgressBar
from pytorch_lightning.utilities import rank_zero_warn

from lightning_ex2.callbacks.progress import SweepProgressBar
from lightning_ex2.callbacks.writer import SampleWriter
from lightning_ex2.strategy import ChainDDPStrategy
from lightning_ex2.validation import check_int


class Ex2Trainer(pl.Trainer):
    """``Trainer`` plus :meth:`sample`, the ``lightning-ex2 sample`` subcommand.

    Unless told otherwise it shows one progress bar over the whole run
    (:class:`~lightning_ex2.callbacks.SweepProgressBar`) instead of one per epoch.
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
        kwargs["callbacks"] = callbacks
        # Gradient kernels need autograd in every stage (validate/test/sample too).
        kwargs.setdefault("inference_mode", False)
        # An epoch is one sweep (often one step): validate every 100 sweeps, not each.
        kwargs.setdefault("check_val_every_n_epoch", 100)
        kwargs.setdefault("num_sanity_val_steps", 0)
        if kwargs.get("strategy") == "ddp":
            kwargs["strategy"] = ChainDDPStrategy()
        super().__init__(*args, **kwargs)

    def sample(
        self,
        model: pl.LightningModule,
        datamodule: pl.LightningDataModule | None = None,
        ckpt_path: str | None = None,
        n_steps: int = 1000,
        burn_in: int = 0,
        thin: int = 1,
        output_dir: str | None = None,
        progress: bool = True,
    ) -> dict[str, Any] | None:
        """Run the frozen sampler and write samples.npz and summary.json.

        Args:
            model: an :class:`~lightning_ex2.modules.MCMCSampler` (or FlEx2MCMC).
            datamodule: the chains (a :class:`~lightning_ex2.data.ChainDataModule`).
            ckpt_path: checkpoint of a ``fit`` run (chain state, trained flow, adapted
                step size); without it the untrained module samples.
            n_steps: steps after burn-in.
            burn_in: extra steps run first and discarded (no adaptation).
            thin: keep one draw in ``thin``.
            output_dir: folder of the outputs (default ``<log_dir>/samples``).
            progress: show a progress bar.

        Returns the summary (on rank 0; ``None`` elsewhere).
        """
        for name, value, minimum in (
            ("n_steps", n_steps, 1),
            ("burn_in", burn_in, 0),
            ("thin", thin, 1),
        ):
            check_int(value, f"--{name}", "sample", minimum)
        if thin > n_steps:
            raise ValueError(f"--thin ({thin}) must not exceed --n_steps ({n_steps})")
        if not hasattr(model, "sampling"):
            raise TypeError(f"sample needs an MCMCSampler module, got {type(model).__name__}")
        if ckpt_path is None and not bool(getattr(model, "chain_ready", [False]).any()):
            rank_zero_warn(
                "sample: no --ckpt_path given; sampling with the module as configured "
                "(untrained flow, initial step size, fresh chains)."
            )
        model.sampling.n_steps = n_steps
        model.sampling.burn_in = burn_in
        model.sampling.thin = thin
        model.sampling.progress = progress
        writer = next((cb for cb in self.callbacks if isinstance(cb, SampleWriter)), None)
        if writer is None:
            writer = SampleWriter()
            self.callbacks.append(writer)
        if output_dir is not None:
            writer.output_dir = output_dir
        # Gradient kernels (MALA, HMC, Ex2MCMC) need autograd: no inference mode.
        previous = self.predict_loop.inference_mode
        self.predict_loop.inference_mode = False
        try:
            self.predict(
                model, datamodule=datamodule, ckpt_path=ckpt_path, return_predictions=False
            )
        finally:
            self.predict_loop.inference_mode = previous
        return writer.summary if self.is_global_zero else None
