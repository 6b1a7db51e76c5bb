"""lightning_compat: what lightning-ex2 relies on in Lightning, checked so an upgrade
that breaks it fails here, loudly, not silently in a run."""

from __future__ import annotations

import inspect
import os

import pytorch_lightning as pl
import torch
from pytorch_lightning.cli import LightningCLI

import lightning_ex2 as lx
from lightning_ex2.lightning import ChainDataModule, MCMCSampler
from lightning_ex2.lightning.compat import (
    ConfigFirstCLI,
    MoveCounter,
    launcher_processes,
    logged_step,
    slurm_auto_resume_checkpoint,
)
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


# ------------------------------------------- checkpoints: read safely, written whole
class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_every_lightning_restore_and_save_goes_through_the_trainers_checkpoint_io(tmp_path):
    """SafeCheckpointIO covers Lightning's restore only while Lightning reads
    ``ckpt_path`` through ``strategy.checkpoint_io.load_checkpoint`` and saves through
    its ``save_checkpoint``; an upgrade that reads or writes elsewhere fails here."""
    from lightning_ex2.lightning.compat import SafeCheckpointIO
    from lightning_ex2.lightning.trainer import Ex2Trainer

    calls = []

    class Spy(SafeCheckpointIO):
        def load_checkpoint(self, path, map_location=None, weights_only=None):
            calls.append(("load", weights_only))
            return super().load_checkpoint(path, map_location, weights_only)

        def save_checkpoint(self, checkpoint, path, storage_options=None):
            calls.append(("save", None))
            super().save_checkpoint(checkpoint, path, storage_options)

    def trainer(steps):
        t = Ex2Trainer(
            accelerator="cpu", devices=1, logger=False, max_steps=steps,
            enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
        )  # fmt: skip
        assert isinstance(t.strategy.checkpoint_io, SafeCheckpointIO)
        t.strategy.checkpoint_io = t.checkpoint_reader = Spy()
        return t

    def model():
        return MCMCSampler(Gaussian(torch.zeros(2), torch.eye(2)), lx.MALA(0.3), n_chains=4)

    trainer(2).fit(model(), datamodule=ChainDataModule(n_chains=4))
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    assert ckpt.is_file() and calls and all(kind == "save" for kind, _ in calls)
    calls.clear()
    resumed = trainer(3)
    resumed.fit(model(), datamodule=ChainDataModule(n_chains=4), ckpt_path=str(ckpt))
    assert ("load", None) in calls, "Lightning no longer restores through checkpoint_io"
    assert resumed.global_step == 3


def test_lightnings_own_load_from_checkpoint_is_held_to_weights_only(tmp_path, monkeypatch):
    """``LightningModule.load_from_checkpoint`` reads files itself (no CheckpointIO),
    with ``weights_only=None`` by default, which TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD turns
    into full unpickling: the project's modules pass ``weights_only=True``."""
    from lightning_ex2.gan import DigitsDiscriminator, DigitsGenerator, GANModule
    from lightning_ex2.trust import UntrustedFile

    params = inspect.signature(pl.LightningModule.load_from_checkpoint).parameters
    assert params["weights_only"].default is None, "Lightning changed load_from_checkpoint"
    module = GANModule(DigitsGenerator(), DigitsDiscriminator())
    state = {"state_dict": module.state_dict(), "pytorch-lightning_version": pl.__version__}
    state["hyper_parameters"] = {"x": _Payload(tmp_path / "PWNED")}
    path = tmp_path / "evil.ckpt"
    torch.save(state, path)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    for cls in (GANModule, MCMCSampler):
        try:
            cls.load_from_checkpoint(path)
        except UntrustedFile as err:
            assert "trust_checkpoint=True" in str(err)
        else:
            raise AssertionError(f"{cls.__name__}.load_from_checkpoint unpickled the file")
    assert not (tmp_path / "PWNED").exists()


def test_version_counter_still_spares_the_callbacks_own_last_model_path(tmp_path):
    """RunGuard.own_last_checkpoints relies on ModelCheckpoint writing ``last.ckpt``
    over an existing file when ``last_model_path`` names it (else ``last-v1.ckpt``)."""
    from pytorch_lightning.callbacks import ModelCheckpoint

    for own in (False, True):
        folder = tmp_path / str(own)
        folder.mkdir()
        (folder / "last.ckpt").write_bytes(b"")
        cb = ModelCheckpoint(dirpath=folder, save_last=True, save_top_k=0, every_n_train_steps=1)
        if own:
            cb.last_model_path = str(folder / "last.ckpt")
        model = MCMCSampler(Gaussian(torch.zeros(2), torch.eye(2)), lx.MALA(0.3), n_chains=4)
        pl.Trainer(
            accelerator="cpu", devices=1, logger=False, max_steps=1, callbacks=[cb],
            enable_progress_bar=False, enable_model_summary=False, default_root_dir=folder,
        ).fit(model, datamodule=ChainDataModule(n_chains=4))  # fmt: skip
        names = sorted(p.name for p in folder.iterdir())
        assert names == (["last.ckpt"] if own else ["last-v1.ckpt", "last.ckpt"]), names


def test_private_parser_structures_the_parse_errors_read_are_still_there():
    """cli.explain_parse_error reads jsonargparse's options, their types, subcommands and
    the arguments it accepts for a class (private members, in lightning_compat)."""
    from jsonargparse import ArgumentParser

    from lightning_ex2.lightning.compat import (
        action_typehint,
        class_parameters,
        parser_actions,
        subcommand_parsers,
    )

    parser = ArgumentParser()
    sub = ArgumentParser()
    sub.add_argument("--n_steps", type=int | None)
    parser.add_subcommands().add_subcommand("sample", sub)
    assert list(subcommand_parsers(parser)) == ["sample"]
    (action,) = [
        a for a in parser_actions(subcommand_parsers(parser)["sample"]) if a.dest == "n_steps"
    ]
    assert action_typehint(action) == int | None
    params = class_parameters(lx.MALA)
    assert "step_size" in params and params["step_size"] is float
