"""lightning_compat: what lightning-ex2 relies on in Lightning, checked so an upgrade
that breaks it fails here, loudly, not silently in a run."""

from __future__ import annotations

import inspect

import pytorch_lightning as pl
import torch
from pytorch_lightning.cli import LightningCLI

import lightning_ex2 as lx
from lightning_ex2.data import ChainDataModule
from lightning_ex2.lightning_compat import (
    ConfigFirstCLI,
    MoveCounter,
    launcher_processes,
    logged_step,
    slurm_auto_resume_checkpoint,
)
from lightning_ex2.modules import MCMCSampler
from lightning_ex2.targets import Gaussian


def _fit(tmp_path, model, **kwargs):
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
        **kwargs,
    )  # fmt: skip
    trainer.fit(model, datamodule=ChainDataModule(n_chains=4))
    return trainer


def test_a_move_without_optimizer_step_counts_as_a_global_step(tmp_path):
    """Public contract: in manual optimization, global_step grows once per optimizer.step()."""
    model = MCMCSampler(Gaussian(torch.zeros(2), torch.eye(2)), lx.MALA(0.3), n_chains=4)
    trainer = _fit(tmp_path, model, max_steps=7)
    assert trainer.global_step == 7
    assert trainer.current_epoch == 7  # one block per sweep: 7 moves


def test_move_counter_changes_nothing():
    counter = MoveCounter()
    (param,) = counter.param_groups[0]["params"]
    assert param.numel() == 0
    calls = []
    counter.step(lambda: calls.append(1))
    assert calls == [1] and counter.state_dict()["state"] == {}


def test_private_batches_that_stepped_is_still_there(tmp_path):
    """logged_step reads fit_loop.epoch_loop._batches_that_stepped (no public twin)."""
    model = MCMCSampler(Gaussian(torch.zeros(2), torch.eye(2)), lx.MALA(0.3), n_chains=4)
    trainer = _fit(tmp_path, model, max_steps=5)
    loop = trainer.fit_loop.epoch_loop
    assert isinstance(loop._batches_that_stepped, int), "Lightning renamed _batches_that_stepped"
    assert logged_step(trainer) == loop._batches_that_stepped - 1 == 4


def test_private_parse_ckpt_path_is_still_the_hook_config_first_cli_overrides():
    assert callable(LightningCLI._parse_ckpt_path), (
        "Lightning removed LightningCLI._parse_ckpt_path"
    )
    assert "self._parse_ckpt_path()" in inspect.getsource(LightningCLI), (
        "LightningCLI no longer calls _parse_ckpt_path: ConfigFirstCLI overrides nothing"
    )
    assert ConfigFirstCLI._parse_ckpt_path is not LightningCLI._parse_ckpt_path


def test_private_launcher_procs_is_still_where_signals_are_forwarded():
    """launcher_processes reads _SubprocessScriptLauncher.procs (no public twin)."""
    from pytorch_lightning.strategies.launchers.subprocess_script import (
        _SubprocessScriptLauncher,
    )

    source = inspect.getsource(_SubprocessScriptLauncher)
    assert "self.procs" in source, "Lightning renamed _SubprocessScriptLauncher.procs"
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False)
    assert launcher_processes(trainer) == []


def test_private_hpc_checkpoint_naming_is_still_hpc_ckpt_n(tmp_path):
    """slurm_auto_resume_checkpoint relies on Lightning's hpc_ckpt_<n>.ckpt naming."""
    from pytorch_lightning.trainer.connectors.checkpoint_connector import (
        _CheckpointConnector,
    )

    assert "hpc_ckpt_" in inspect.getsource(_CheckpointConnector), (
        "Lightning renamed its SLURM auto-requeue checkpoints (hpc_ckpt_<n>.ckpt)"
    )
    assert slurm_auto_resume_checkpoint(tmp_path) is None
    for n in (2, 10, 1):
        (tmp_path / f"hpc_ckpt_{n}.ckpt").write_bytes(b"")
    assert slurm_auto_resume_checkpoint(tmp_path) == str(tmp_path / "hpc_ckpt_10.ckpt")
