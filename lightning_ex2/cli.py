"""The ``lightning-ex2`` command: LightningCLI with ``fit``, ``validate``, ``test``,
``predict`` and ``sample``.

Examples::

    lightning-ex2 fit --config configs/quickstart.yaml
    lightning-ex2 sample --config configs/quickstart.yaml \\
        --ckpt_path logs/quickstart/fit/checkpoints/last.ckpt --n_steps 500
    lightning-ex2 fit --config configs/quickstart.yaml --print_config
"""

from __future__ import annotations

import logging
import re
import sys
import warnings

import pytorch_lightning as pl
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

from lightning_ex2.trainer import Ex2Trainer


class Ex2CLI(LightningCLI):
    """LightningCLI whose ``data.n_chains`` feeds ``model.n_chains``, plus ``sample``.

    Models are any LightningModule by class_path (``MCMCSampler``, ``FlEx2MCMC``,
    ``lightning_ex2.gan.GANModule``); data default to ``ChainDataModule``.
    """

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {**LightningCLI.subcommands(), "sample": {"model", "datamodule"}}

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # `data:` without a class_path is a ChainDataModule (every sampler config);
        # GAN training configs name an image DataModule instead.
        parser.set_defaults({"data": {"class_path": "lightning_ex2.data.ChainDataModule"}})
        parser.link_arguments("data.init_args.n_chains", "model.init_args.n_chains")

    def _parse_ckpt_path(self) -> None:
        """Keep the config as given: our modules save no hyper-parameters in checkpoints
        (their target and kernel are modules); the config is the record of a run."""

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except (ValueError, TypeError, FileNotFoundError) as err:
            # Our constructors name the offending field; no traceback from deep inside.
            print(f"lightning-ex2: error: invalid configuration: {err}", file=sys.stderr)
            raise SystemExit(2) from None


# Expected with our design, not actionable by users:
QUIET_WARNINGS = (
    # a checkpoint after the move + flow update is exactly the state we want
    "Using ModelCheckpoint with manual optimization",
    # MCMCSampler with a local kernel has nothing to optimize
    "`LightningModule.configure_optimizers` returned `None`",
    # an epoch is one sweep (often one step); logging is per step, not per epoch
    "The number of training batches",
    # GANLatentTarget keeps its generator/discriminator in eval mode on purpose
    "module(s) in eval mode at the start of training",
    # image DataModules with val_fraction=0
    "Total length of `list` across ranks is zero",
    # pytorch-lightning 2.6 vs torch 2.13 internals
    "`isinstance(treespec, LeafSpec)` is deprecated",
)


def _not_an_advert(record: logging.LogRecord) -> bool:
    return "litlogger" not in record.getMessage()


def quiet_warnings() -> None:
    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=".*" + re.escape(message))
    # Lightning advertises a cloud logger on every run; keep the console about the run.
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_not_an_advert)


def build_cli(args: list[str] | None = None, run: bool = True) -> Ex2CLI:
    """Parse ``args`` (default ``sys.argv``), instantiate, and run unless ``run=False``."""
    quiet_warnings()
    return Ex2CLI(
        pl.LightningModule,
        pl.LightningDataModule,
        trainer_class=Ex2Trainer,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        trainer_defaults={
            "log_every_n_steps": 10,
            "default_root_dir": "logs",
            "enable_model_summary": False,
            # as Ex2Trainer's own defaults (the CLI passes every Trainer argument)
            "inference_mode": False,
            "check_val_every_n_epoch": 100,
            "num_sanity_val_steps": 0,
        },
        parser_kwargs={
            "description": "lightning-ex2: i-SIR, Ex2MCMC and FlEx2MCMC sampling "
            "(fit = warm-up/flow training, sample = the frozen sampler). "
            "Run a subcommand with --help for its options."
        },
        args=args,
        run=run,
    )


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``lightning-ex2`` command."""
    build_cli(args)


if __name__ == "__main__":
    main()
