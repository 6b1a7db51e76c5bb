"""No code runs from a checkpoint, one ``last.ckpt``, files written whole, one run per
folder: the checkpoint rules of ``fit``/``sample``/``validate``, in-process.

Stops are requested through :mod:`lightning_ex2.interrupt` (what the signal handlers
do); the signals themselves are tested in ``tests/multiprocess/test_signals.py``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile

import pytest
import torch

from lightning_ex2 import interrupt
from lightning_ex2.errors import UserError
from lightning_ex2.lightning.compat import SafeCheckpointIO
from lightning_ex2.lightning.guard import RunGuard
from lightning_ex2.trust import DamagedFile, UntrustedFile, load_torch
from tests.cli.test_safety import CONFIG, main, one_line_error, sample_args, write_config

__all__ = ["main"]  # the fixture


class Payload:
    """Unpickling runs ``touch <marker>`` (the issue's crafted checkpoint)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class Killed(Exception):
    """Stands for a SIGKILL at that point."""


def run_dir(tmp_path, version="fit"):
    return tmp_path / "logs" / "run" / version


def fit(main, cfg, *extra):
    return main("fit", "--config", cfg, *map(str, extra))


def step_of(path):
    return torch.load(path, weights_only=True)["global_step"]


def stop_at(monkeypatch, step):
    """Request a stop (as SIGTERM's handler does) once ``fit`` reaches ``step``."""
    real = RunGuard.on_train_batch_end

    def hook(self, trainer, *args, **kwargs):
        if trainer.global_step == step:
            interrupt.request("SIGTERM")
        return real(self, trainer, *args, **kwargs)

    monkeypatch.setattr(RunGuard, "on_train_batch_end", hook)


@pytest.fixture
def fitted(tmp_path, main):
    cfg = write_config(tmp_path, steps=4)
    assert fit(main, cfg) == 0
    return cfg, run_dir(tmp_path) / "checkpoints" / "last.ckpt"


# ------------------------------------------------------- no code from a checkpoint
@pytest.mark.parametrize("command", ["sample", "validate", "fit"])
def test_crafted_checkpoint_runs_no_code(tmp_path, main, capsys, fitted, command):
    """The issue's reproduction: hyper_parameters holding ``os.system``: exit 2, one
    line naming the opt-in, and the command never ran."""
    cfg, ckpt = fitted
    marker = tmp_path / "PWNED"
    state = torch.load(ckpt, weights_only=True)
    state["hyper_parameters"] = {"x": Payload(marker)}
    evil = tmp_path / "evil.ckpt"
    torch.save(state, evil)
    args = {
        "sample": sample_args(cfg, evil, tmp_path / "out"),
        "validate": ("validate", "--config", cfg, "--ckpt_path", evil),
        "fit": ("fit", "--config", cfg, "--ckpt_path", evil, "--trainer.max_steps", 6),
    }[command]
    assert main(*args) == 2
    one_line_error(capsys, str(evil), "posix.system", "--trust_checkpoint true", "refused")
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_only_the_opt_in_unpickles_and_every_reader_refuses(tmp_path, main, capsys, fitted):
    """Variations: the object in a callback's state; Lightning's own restore path, even
    with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1; GAN weights and classifier files through
    the Python loaders. A harmless object loads with ``--trust_checkpoint true``."""
    cfg, ckpt = fitted
    marker = tmp_path / "PWNED"
    state = torch.load(ckpt, weights_only=True)
    state["callbacks"]["x"] = Payload(marker)
    evil = tmp_path / "evil.ckpt"
    torch.save(state, evil)
    assert main(*sample_args(cfg, evil, tmp_path / "out")) == 2
    one_line_error(capsys, "--trust_checkpoint true")
    os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        with pytest.raises(UntrustedFile, match="trust_checkpoint"):
            SafeCheckpointIO().load_checkpoint(evil, weights_only=False)
    finally:
        del os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"]
    from lightning_ex2.gan import DigitsGenerator, load_gan_checkpoint
    from lightning_ex2.gan.classifier import load_feature_cnn

    weights = tmp_path / "netG.pth"
    torch.save({"model_state_dict": DigitsGenerator().state_dict(), "x": Payload(marker)}, weights)
    with pytest.raises(UntrustedFile, match="trust_checkpoint=True"):
        load_gan_checkpoint(DigitsGenerator(), weights)
    with pytest.raises(UntrustedFile, match="trust_checkpoint=True"):
        load_feature_cnn("digits", weights)
    assert not marker.exists()
    # the opt-in reads a file that needs full unpickling (here a harmless Namespace)
    state = torch.load(ckpt, weights_only=True)
    state["hyper_parameters"] = {"ns": argparse.Namespace(a=1)}
    trusted = tmp_path / "trusted.ckpt"
    torch.save(state, trusted)
    args = ("validate", "--config", cfg, "--ckpt_path", trusted)
    assert main(*args) == 2
    one_line_error(capsys, "argparse.Namespace", "--trust_checkpoint true")
    assert main(*args, "--trust_checkpoint", "true") == 0


def test_nan_and_damaged_checkpoints_are_one_line(tmp_path, main, capsys, fitted, monkeypatch):
    cfg, ckpt = fitted
    state = torch.load(ckpt, weights_only=True)
    sd = state["state_dict"]
    tuned = next(k for k, v in sd.items() if k.startswith("tuning.") and v.is_floating_point())
    for key in ("state.x", tuned):
        bad = state | {"state_dict": dict(state["state_dict"])}
        bad["state_dict"][key] = torch.full_like(bad["state_dict"][key], float("nan"))
        path = tmp_path / "nan.ckpt"
        torch.save(bad, path)
        assert main(*sample_args(cfg, path, tmp_path / "out")) == 2
        one_line_error(capsys, str(path), "NaN", key)
    data = bytearray(ckpt.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a flipped byte: tensor data or archive structure
    damaged = tmp_path / "damaged.ckpt"
    damaged.write_bytes(bytes(data))
    assert main(*sample_args(cfg, damaged, tmp_path / "out")) == 2
    one_line_error(capsys, str(damaged))
    assert not (tmp_path / "out").exists()


def test_damaged_tensor_bytes_fail_their_checksum(tmp_path):
    path = tmp_path / "w.pt"
    torch.save({"w": torch.arange(4096.0)}, path)
    data = bytearray(path.read_bytes())
    data[data.index(torch.arange(4096.0).numpy().tobytes()[64:96]) + 8] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DamagedFile, match="checksum"):
        load_torch(path)
    with pytest.raises(UserError, match="truncated"):
        (tmp_path / "t.pt").write_bytes(bytes(data[:1000]))
        load_torch(tmp_path / "t.pt")


# ---------------------------------------------------------------- one last.ckpt
def test_one_last_ckpt_after_fit_resume_and_stop(tmp_path, main, monkeypatch):
    """The issue's first form: a fit whose last.ckpt the guard wrote (3 steps, periodic
    saves every 4), resumed to more steps, then stopped: one last.ckpt, the newest."""
    cfg = write_config(tmp_path, steps=3)
    assert fit(main, cfg) == 0
    ckpt = run_dir(tmp_path) / "checkpoints" / "last.ckpt"
    assert step_of(ckpt) == 3
    stop_at(monkeypatch, 6)
    assert fit(main, cfg, "--ckpt_path", ckpt, "--trainer.max_steps", 100) == 143
    assert sorted(p.name for p in ckpt.parent.iterdir()) == ["last.ckpt"]
    assert step_of(ckpt) == 6


def test_one_last_ckpt_after_early_stop_requeue_and_copied_folder(tmp_path, main, monkeypatch):
    """Variations: a stop before the first periodic save, then the requeued resume
    stopped again; then a copy of the run folder resumed in place."""
    cfg = write_config(tmp_path, steps=100)
    stop_at(monkeypatch, 2)
    assert fit(main, cfg) == 143
    ckpt = run_dir(tmp_path) / "checkpoints" / "last.ckpt"
    assert step_of(ckpt) == 2
    stop_at(monkeypatch, 9)  # periodic saves at 4 and 8 on the way
    assert fit(main, cfg, "--ckpt_path", ckpt) == 143
    assert sorted(p.name for p in ckpt.parent.iterdir()) == ["last.ckpt"]
    assert step_of(ckpt) == 9
    copy = run_dir(tmp_path, "copy")
    shutil.copytree(run_dir(tmp_path), copy)
    copied = copy / "checkpoints" / "last.ckpt"
    extra = ("--trainer.logger.init_args.version", "copy", "--trainer.max_steps", 14)
    stop_at(monkeypatch, -1)
    assert fit(main, cfg, "--ckpt_path", copied, *extra) == 0
    assert sorted(p.name for p in copied.parent.iterdir()) == ["last.ckpt"]
    assert step_of(copied) == 14
    assert step_of(ckpt) == 9  # the original is untouched


def test_fit_without_a_model_checkpoint_keeps_last_ckpt(tmp_path, main):
    cfg = tmp_path / "nockpt.yaml"
    text = write_config(tmp_path, steps=3).read_text()
    head, _, tail = text.partition("  callbacks:")
    cfg.write_text(head + "model:" + tail.split("model:", 1)[1])
    assert "ModelCheckpoint" not in cfg.read_text()
    assert fit(main, cfg) == 0
    assert step_of(run_dir(tmp_path) / "checkpoints" / "last.ckpt") == 3


# ------------------------------------------------------------ files written whole
def test_config_yaml_is_renamed_into_place(tmp_path, main, monkeypatch):
    """config.yaml is never written in place (0 bytes while writing); a run killed
    while writing it leaves no config.yaml, and the same command then runs."""
    import lightning_ex2.output.files as io

    renamed = []
    real = os.replace

    def replace(src, dst):
        renamed.append((os.path.dirname(src), str(dst)))
        if str(dst).endswith("config.yaml") and len(renamed) == 1:
            raise Killed  # killed before the rename
        return real(src, dst)

    monkeypatch.setattr(io.os, "replace", replace)
    cfg = write_config(tmp_path, steps=3)
    config = run_dir(tmp_path) / "config.yaml"
    with pytest.raises(Killed):
        fit(main, cfg)
    assert not config.exists()
    assert renamed == [(str(run_dir(tmp_path)), str(config))]  # a temp file beside it
    assert fit(main, cfg) == 0
    assert config.stat().st_size > 0


def test_checkpoint_saves_stage_in_their_own_folder(tmp_path, main, monkeypatch):
    """No temp file in $TMPDIR (from there, another file system's copy over last.ckpt
    is not atomic), and last.ckpt is the old or the new one, never a truncated one."""
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmpdir))
    made = []
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*args, **kwargs):
        fd, name = real_mkstemp(*args, **kwargs)
        made.append(name)
        return fd, name

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    cfg = write_config(tmp_path, steps=4)
    assert fit(main, cfg) == 0
    ckpt = run_dir(tmp_path) / "checkpoints" / "last.ckpt"
    assert made and not [m for m in made if m.startswith(str(tmpdir))], made
    # a save killed half-way: the previous last.ckpt is intact, no temp file left
    before = ckpt.read_bytes()
    real_save = torch.save

    def dying_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        SafeCheckpointIO().save_checkpoint({"global_step": 99}, ckpt)
    monkeypatch.setattr(torch, "save", real_save)
    assert ckpt.read_bytes() == before and step_of(ckpt) == 4
    assert sorted(p.name for p in ckpt.parent.iterdir()) == ["last.ckpt"]


# ------------------------------------------------------------ one run per folder
FIXED = CONFIG.replace(
    "init_args: {{save_last: true,", 'init_args: {{dirpath: "{root}/ckpt", save_last: true,'
)


def test_fixed_dirpath_cannot_mix_runs(tmp_path, main, capsys):
    """The issue's case: a fixed ModelCheckpoint.dirpath; resuming run A under
    version b is refused before B's folder gets a config.yaml."""
    cfg = tmp_path / "fixed.yaml"
    cfg.write_text(
        FIXED.format(
            root=tmp_path, steps=4, target="lightning_ex2.targets.GridMixture",
            target_args="{k: 2, spacing: 5.0}", step_size=0.3,
        )
    )  # fmt: skip
    assert fit(main, cfg) == 0
    ckpt = tmp_path / "ckpt" / "last.ckpt"
    before = ckpt.read_bytes()
    args = ("--ckpt_path", ckpt, "--trainer.max_steps", 6)
    assert fit(main, cfg, *args, "--trainer.logger.init_args.version", "b") == 2
    one_line_error(capsys, str(ckpt), str(run_dir(tmp_path)), "dirpath")
    assert not run_dir(tmp_path, "b").exists()
    assert ckpt.read_bytes() == before
    # variation: the same resume in A's own folder is a resume
    assert fit(main, cfg, *args) == 0
    assert step_of(ckpt) == 6


def test_one_reader_of_torch_files():
    """Every torch file is read through lightning_ex2.trust.load_torch: no other
    ``torch.load`` and no ``weights_only=False`` in the package, scripts or benchmarks
    (a new reader that retries without weights_only would bring the issue back)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    found = [
        f"{path.relative_to(root)}:{n}"
        for folder in ("lightning_ex2", "scripts", "benchmarks")
        for path in sorted((root / folder).rglob("*.py"))
        if path.name != "trust.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if ("torch.load(" in line.split("#")[0] and "``" not in line)
        or ("weights_only=False" in line and "save_checkpoint" not in line)
    ]
    assert not found, found
