"""The command fails safe: checks before any work, one-line errors, output sets written
whole, checkpoints that disagree with the config refused, one rule for used folders.

In-process (``lightning_ex2.lightning.cli.main``); the signal tests proper, which need their own
process, are in ``tests/multiprocess/test_signals.py``.
"""

from __future__ import annotations

import json
import os
import stat
import textwrap

import numpy as np
import pytest
import torch

from lightning_ex2 import interrupt
from lightning_ex2.errors import UserError
from lightning_ex2.lightning import cli

CONFIG = """
seed_everything: 0
trainer:
  max_steps: {steps}
  accelerator: cpu
  devices: 1
  enable_progress_bar: false
  logger:
    class_path: pytorch_lightning.loggers.TensorBoardLogger
    init_args: {{save_dir: "{root}/logs", name: run, version: fit}}
  callbacks:
    - class_path: pytorch_lightning.callbacks.ModelCheckpoint
      init_args: {{save_last: true, save_top_k: 0, every_n_train_steps: 4}}
model:
  class_path: lightning_ex2.lightning.MCMCSampler
  init_args:
    target:
      class_path: {target}
      init_args: {target_args}
    kernel:
      class_path: lightning_ex2.kernels.MALA
      init_args: {{step_size: {step_size}, target_accept: 0.574}}
data:
  n_chains: 16
"""


def write_config(
    tmp_path,
    name="config.yaml",
    steps=8,
    spacing=5.0,
    step_size=0.3,
    target="lightning_ex2.targets.GridMixture",
    target_args=None,
):
    path = tmp_path / name
    args = target_args or f"{{k: 2, spacing: {spacing}}}"
    path.write_text(
        CONFIG.format(
            root=tmp_path, steps=steps, target=target, target_args=args, step_size=step_size
        )
    )
    return path


@pytest.fixture
def main(monkeypatch):
    """``lightning-ex2 ARGS`` in-process; returns the exit status (0 when it returns)."""
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)

    def run(*args):
        monkeypatch.setattr("sys.argv", ["lightning-ex2", *map(str, args)])
        try:
            cli.main()
        except SystemExit as exit_info:
            return exit_info.code
        finally:
            interrupt.clear()
        return 0

    return run


def one_line_error(capsys, *words):
    """stderr's lightning-ex2 message: one line, no traceback, containing ``words``."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    ours = [line for line in err.splitlines() if line.startswith("lightning-ex2: ")]
    assert len(ours) == 1, err
    for word in words:
        assert word in ours[0], (word, ours[0])
    return ours[0]


def sample_args(cfg, ckpt, out, *extra):
    return (
        "sample",
        "--config",
        cfg,
        "--ckpt_path",
        ckpt,
        "--n_steps",
        12,
        "--output_dir",
        out,
        "--progress",
        "false",
        *extra,
    )


@pytest.fixture
def fitted(tmp_path, main):
    cfg = write_config(tmp_path)
    assert main("fit", "--config", cfg) == 0
    ckpt = tmp_path / "logs" / "run" / "fit" / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    return cfg, ckpt


def no_sampling(monkeypatch):
    """Make any MCMC step of ``sample`` fail the test (checks must come first)."""

    def fail(*args, **kwargs):
        raise AssertionError("sampling ran before the check")

    monkeypatch.setattr("lightning_ex2.lightning.module.run_chains", fail)


# ------------------------------------------------------------------ used folders
def test_fit_twice_into_one_folder_is_refused_and_resume_keeps_last_ckpt(
    tmp_path, main, capsys, fitted
):
    cfg, ckpt = fitted
    config_before = (ckpt.parent.parent / "config.yaml").read_bytes()
    assert main("fit", "--config", cfg) == 2
    one_line_error(capsys, "already holds a run", str(ckpt))
    assert (ckpt.parent.parent / "config.yaml").read_bytes() == config_before
    # resuming continues the run in its folder: last.ckpt is overwritten, no last-v1.ckpt
    assert main("fit", "--config", cfg, "--ckpt_path", ckpt, "--trainer.max_steps", 12) == 0
    assert sorted(p.name for p in ckpt.parent.iterdir()) == ["last.ckpt"]
    assert torch.load(ckpt, weights_only=True)["global_step"] == 12


def test_sample_never_writes_into_the_fit_folder(tmp_path, main, capsys, fitted, monkeypatch):
    cfg, ckpt = fitted
    run_dir = ckpt.parent.parent
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    with monkeypatch.context() as m:
        no_sampling(m)
        assert main(*sample_args(cfg, ckpt, run_dir)) == 2
    one_line_error(capsys, "not part of a sample output set", str(run_dir), "hparams.yaml")
    # default output folder <log_dir>/samples: the set carries its own config.yaml
    assert (
        main("sample", "--config", cfg, "--ckpt_path", ckpt, "--n_steps", 6, "--progress", "false")
        == 0
    )
    after = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    for name, content in before.items():
        assert after[name] == content, name  # config.yaml, hparams.yaml, events untouched
    names = sorted(p.name for p in (run_dir / "samples").iterdir())
    assert [n for n in names if not n.startswith("events.out.tfevents.")] == [
        "config.yaml",
        "manifest.json",
        "pair.png",
        "rank.png",
        "samples.nc",
        "samples.npz",
        "scatter.png",
        "summary.json",
        "trace.png",
    ]
    assert len(names) == 10  # and the set's own TensorBoard events
    assert "n_steps: 6" not in before["config.yaml"].decode()


@pytest.mark.parametrize("case", ["file", "parent_file", "read_only", "used"])
def test_output_folder_checked_before_any_step(tmp_path, main, capsys, fitted, monkeypatch, case):
    cfg, ckpt = fitted
    out = tmp_path / "out"
    if case == "file":
        out.write_text("not a folder")
        words = ("exists and is not a folder",)
    elif case == "parent_file":
        (tmp_path / "f").write_text("")
        out = tmp_path / "f" / "out"
        words = ("is not a folder",)
    elif case == "read_only":
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        (tmp_path / "ro").mkdir(mode=0o555)
        out = tmp_path / "ro" / "out"
        words = ("not writable",)
    else:
        assert main(*sample_args(cfg, ckpt, out)) == 0
        words = ("previous run", "--overwrite true")
    no_sampling(monkeypatch)
    assert main(*sample_args(cfg, ckpt, out)) == 2
    one_line_error(capsys, str(out), *words)


def test_overwrite_replaces_the_set_whole_with_umask_permissions(
    tmp_path, main, fitted, monkeypatch
):
    cfg, ckpt = fitted
    out = tmp_path / "out"
    old_mask = os.umask(0o002)
    try:
        assert main(*sample_args(cfg, ckpt, out)) == 0
        # a staging folder left by a killed run (its process is gone) is cleaned up
        # (an older version staged next to the folder, this one inside it)
        for stale in (
            tmp_path / ".out.tmp-999999999-x",
            out / ".lightning-ex2-staging-999999999-x",
        ):
            stale.mkdir()
            (stale / "samples.npz").write_text("half")
        assert main(*sample_args(cfg, ckpt, out, "--n_steps", 7, "--overwrite", "true")) == 0
    finally:
        os.umask(old_mask)
    assert json.loads((out / "summary.json").read_text())["n_steps"] == 7
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
    for p in out.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o664, p
    assert stat.S_IMODE(out.stat().st_mode) == 0o775


def test_failure_while_writing_leaves_the_previous_set(tmp_path, main, fitted, monkeypatch):
    cfg, ckpt = fitted
    out = tmp_path / "out"
    assert main(*sample_args(cfg, ckpt, out)) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("lightning_ex2.output.writer.save_json", crash)
    with pytest.raises(OSError, match="disk full"):
        main(*sample_args(cfg, ckpt, out, "--n_steps", 7, "--overwrite", "true"))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def stop_after(monkeypatch, n_calls):
    """Make ``sample``'s step loop see a SIGTERM request at its ``n_calls``-th log_prob."""
    from lightning_ex2.lightning import module as sampler

    real = sampler.run_chains
    calls = {"n": 0}

    class Stopper:
        def __init__(self, target):
            self.target = target

        def _count(self):
            calls["n"] += 1
            if calls["n"] == n_calls:
                interrupt.request("SIGTERM")

        def log_prob(self, x):
            self._count()
            return self.target.log_prob(x)

        def log_prob_and_grad(self, x):  # the built-in targets' closed form
            self._count()
            return self.target.log_prob_and_grad(x)

        def __getattr__(self, name):
            return getattr(self.target, name)

    def stopping(kernel, target, *args, **kwargs):
        return real(kernel, Stopper(target), *args, **kwargs)

    monkeypatch.setattr(sampler, "run_chains", stopping)


def test_stop_during_burn_in_leaves_nothing_new(tmp_path, main, capsys, fitted, monkeypatch):
    cfg, ckpt = fitted
    stop_after(monkeypatch, 2)
    out = tmp_path / "out"
    assert main(*sample_args(cfg, ckpt, out, "--burn_in", 10)) == 143
    one_line_error(capsys, "SIGTERM", "no output written")
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_stop_request_keeps_a_partial_set(tmp_path, main, capsys, fitted, monkeypatch):
    """A stop request mid-run (what the signal handlers make) gives a consistent set
    marked ``"complete": false`` and exit status 143."""
    cfg, ckpt = fitted
    stop_after(monkeypatch, 30)
    out = tmp_path / "out"
    assert main(*sample_args(cfg, ckpt, out, "--n_steps", 1000)) == 143
    one_line_error(capsys, "SIGTERM", "complete", str(out))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is False and summary["stopped_by"] == "SIGTERM"
    data = np.load(out / "samples.npz")
    assert 0 < summary["n_draws"] < 1000
    assert data["samples"].shape == (16, summary["n_draws"], 2)
    assert data["log_prob"].shape == (16, summary["n_draws"])


def test_writer_reports_every_info_field(tmp_path, main, fitted, monkeypatch):
    cfg, ckpt = fitted
    from lightning_ex2.lightning import module as sampler

    real = sampler.run_chains

    def more_info(*args, **kwargs):
        chains = real(*args, **kwargs)
        chains.info["extra_rate"] = torch.full((chains.samples.shape[0],), 2.0)
        return chains

    monkeypatch.setattr(sampler, "run_chains", more_info)
    out = tmp_path / "out"
    assert main(*sample_args(cfg, ckpt, out)) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["extra_rate_mean"] == 2.0 and summary["complete"] is True
    assert np.load(out / "samples.npz")["extra_rate"].shape == (16,)
    # the kernels' own count of NaN/+inf log-densities: a total, here none
    assert summary["nonfinite"] == 0
    assert np.load(out / "samples.npz")["nonfinite"].shape == (16,)


# ------------------------------------------------------- checkpoint vs config
def test_checkpoint_of_another_target_is_refused_unless_overridden(
    tmp_path, main, capsys, fitted, monkeypatch
):
    _cfg, ckpt = fitted
    other = write_config(tmp_path, "spacing1.yaml", spacing=1.0)
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        no_sampling(m)
        assert main(*sample_args(other, ckpt, out)) == 2
    one_line_error(capsys, str(ckpt), "target.loc", "--override_ckpt")
    # the override runs the config's target (modes at +-0.5), not the checkpoint's (+-2.5)
    assert (
        main(
            *sample_args(
                other, ckpt, out, "--override_ckpt", "true", "--burn_in", 100, "--n_steps", 100
            )
        )
        == 0
    )
    samples = np.load(out / "samples.npz")["samples"]
    assert np.abs(samples).mean() < 1.5


def test_kernel_setting_that_differs_is_named(tmp_path, main, capsys, fitted, monkeypatch):
    _cfg, ckpt = fitted
    other = write_config(tmp_path, "step.yaml", step_size=0.1)
    no_sampling(monkeypatch)
    assert main(*sample_args(other, ckpt, tmp_path / "out")) == 2
    one_line_error(capsys, "kernel.step_size: checkpoint 0.3, config 0.1")


def test_shape_mismatch_is_a_short_summary(tmp_path, main, capsys, fitted, monkeypatch):
    cfg, ckpt = fitted
    no_sampling(monkeypatch)
    assert main(*sample_args(cfg, ckpt, tmp_path / "out", "--data.n_chains", 9)) == 2
    line = one_line_error(capsys, "data.n_chains", "checkpoint [16, 2], config [9, 2]")
    assert len(line) < 600 and "Missing key" not in line


@pytest.mark.parametrize("case", ["missing", "truncated", "folder"])
def test_unreadable_checkpoint(tmp_path, main, capsys, fitted, monkeypatch, case):
    cfg, ckpt = fitted
    bad = tmp_path / "bad.ckpt"
    if case == "truncated":
        bad.write_bytes(ckpt.read_bytes()[:3000])
    elif case == "folder":
        bad = ckpt.parent
    no_sampling(monkeypatch)
    assert main(*sample_args(cfg, bad, tmp_path / "out")) == 2
    one_line_error(capsys, str(bad))
    assert main("fit", "--config", cfg, "--ckpt_path", bad) == 2
    one_line_error(capsys, str(bad))


# ---------------------------------------------------------- one-line errors
def test_init_loc_of_wrong_dim(tmp_path, main, capsys):
    cfg = write_config(tmp_path)
    assert main("fit", "--config", cfg, "--data.init_loc", "[1.0, 2.0, 3.0]") == 2
    one_line_error(capsys, "data.init_loc", "dim 2")
    assert not (tmp_path / "logs" / "run" / "fit" / "checkpoints").exists()


def test_log_prob_of_wrong_shape(tmp_path, main, capsys, monkeypatch):
    (tmp_path / "bad_target.py").write_text(
        textwrap.dedent("""
        from torch import nn

        class Column(nn.Module):
            def __init__(self, dim: int = 2):
                super().__init__()
                self.dim = dim

            def log_prob(self, x):
                return -0.5 * (x**2).sum(-1, keepdim=True)
        """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = write_config(tmp_path, target="bad_target.Column", target_args="{dim: 2}")
    assert main("fit", "--config", cfg) == 2
    one_line_error(capsys, "model.target (Column)", "[2, 2]", "[2, 1]")


def test_out_of_memory_names_sizes_and_options(tmp_path, main, capsys):
    cfg = tmp_path / "isir.yaml"
    cfg.write_text(
        textwrap.dedent(f"""
        trainer: {{max_steps: 2, accelerator: cpu, enable_progress_bar: false, logger: false,
                  enable_checkpointing: false, default_root_dir: "{tmp_path}"}}
        model:
          class_path: lightning_ex2.lightning.MCMCSampler
          init_args:
            target: {{class_path: lightning_ex2.targets.GridMixture, init_args: {{k: 2}}}}
            kernel:
              class_path: lightning_ex2.kernels.ISIR
              init_args:
                proposal:
                  class_path: lightning_ex2.proposals.GaussianProposal
                  init_args: {{dim: 2, scale: 3.0}}
                n_particles: 1000000000000
        data: {{n_chains: 4}}
        """)
    )
    assert main("fit", "--config", cfg) == 2
    one_line_error(
        capsys,
        "out of memory",
        "C=4",
        "N=1000000000000",
        "D=2",
        "data.chains_per_batch",
        "n_particles",
    )


def test_debug_shows_the_traceback(tmp_path, main, monkeypatch):
    cfg = write_config(tmp_path)
    with pytest.raises(UserError, match=r"data\.init_loc"):
        main("fit", "--config", cfg, "--data.init_loc", "[1.0, 2.0, 3.0]", "--debug")
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    monkeypatch.setattr(
        "sys.argv",
        ["lightning-ex2", "fit", "--config", str(cfg), "--data.init_loc", "[1.0, 2.0, 3.0]"],
    )
    with pytest.raises(UserError, match=r"data\.init_loc"):
        cli.main()


def test_unknown_top_level_key_even_empty(tmp_path, main, capsys):
    cfg = write_config(tmp_path)
    cfg.write_text(cfg.read_text() + "extras: {}\n")
    assert main("fit", "--config", cfg) == 2
    one_line_error(capsys, "extras")


def test_predict_is_not_a_command(tmp_path, main, capsys):
    cfg = write_config(tmp_path)
    assert main("predict", "--config", cfg) not in (0, None)
    assert "predict" in capsys.readouterr().err


def test_slurm_auto_resume_counts_as_resuming(tmp_path, monkeypatch):
    """Under SLURM, Lightning resumes from its newest hpc_ckpt_<n>.ckpt by itself: the
    requeued command (no --ckpt_path) is a resume, not a second run into the folder."""
    from lightning_fabric.plugins.environments import SLURMEnvironment

    from lightning_ex2.lightning.preflight import check_fresh_folder, slurm_resume_path
    from lightning_ex2.lightning.trainer import Ex2Trainer

    trainer = Ex2Trainer(default_root_dir=str(tmp_path), logger=False, accelerator="cpu")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_text("")
    with pytest.raises(UserError, match="already holds a run"):
        check_fresh_folder(trainer, None, None, 0.0)
    for n in (2, 10):
        (tmp_path / f"hpc_ckpt_{n}.ckpt").write_text("")
    assert slurm_resume_path(trainer) is None  # not under SLURM
    monkeypatch.setattr(SLURMEnvironment, "detect", staticmethod(lambda: True))
    assert slurm_resume_path(trainer) == str(tmp_path / "hpc_ckpt_10.ckpt")
    check_fresh_folder(trainer, None, None, 0.0)  # no error


# ------------------------------------------------------------ the final state
def test_last_ckpt_is_the_final_step_whatever_every_n_train_steps(tmp_path, main):
    """max_steps 10 with every_n_train_steps 4: last.ckpt holds step 10 (not 8), and a
    resume from it continues from step 10."""
    cfg = write_config(tmp_path, steps=10)
    assert main("fit", "--config", cfg) == 0
    ckpt = tmp_path / "logs" / "run" / "fit" / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, weights_only=True)
    assert state["global_step"] == 10
    assert sorted(p.name for p in ckpt.parent.iterdir()) == ["last.ckpt"]
    assert main("fit", "--config", cfg, "--ckpt_path", ckpt, "--trainer.max_steps", 11) == 0
    assert torch.load(ckpt, weights_only=True)["global_step"] == 11


# ------------------------------------------------- output sets in any folder
def no_stray(*folders):
    """No hidden staging/old folders left in any of ``folders``."""
    for folder in folders:
        assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == [], folder


def test_publishing_into_a_symlinked_folder(tmp_path, main, fitted):
    cfg, ckpt = fitted
    real = tmp_path / "scratch" / "real"
    real.mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    assert main(*sample_args(cfg, ckpt, link)) == 0
    assert main(*sample_args(cfg, ckpt, link, "--n_steps", 7, "--overwrite", "true")) == 0
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert json.loads((real / "summary.json").read_text())["n_steps"] == 7
    no_stray(tmp_path, real, real.parent)


def test_publishing_into_a_mount_point(tmp_path, main, fitted, monkeypatch):
    """A mount point (Docker volume, tmpfs, scratch) cannot be renamed or removed
    (EBUSY): the set is published inside it, first run and --overwrite alike."""
    import errno

    cfg, ckpt = fitted
    mount = tmp_path / "mnt"
    mount.mkdir()
    real_replace, real_rename, real_rmdir = os.replace, os.rename, os.rmdir

    def busy(*paths):
        if any(os.path.abspath(p) == str(mount) for p in paths):
            raise OSError(errno.EBUSY, "Device or resource busy", str(mount))

    def replace(src, dst, *a, **k):
        busy(src, dst)
        return real_replace(src, dst, *a, **k)

    def rename(src, dst, *a, **k):
        busy(src, dst)
        return real_rename(src, dst, *a, **k)

    def rmdir(path, *a, **k):
        busy(path)
        return real_rmdir(path, *a, **k)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(os, "rmdir", rmdir)
    assert main(*sample_args(cfg, ckpt, mount)) == 0
    assert json.loads((mount / "summary.json").read_text())["complete"] is True
    assert main(*sample_args(cfg, ckpt, mount, "--n_steps", 7, "--overwrite", "true")) == 0
    assert json.loads((mount / "summary.json").read_text())["n_steps"] == 7
    no_stray(tmp_path, mount)


def test_unwritable_folder_is_refused_before_any_step(tmp_path, main, capsys, fitted, monkeypatch):
    """Where the set truly cannot be written (a read-only mount: checked by creating a
    file, which also works as root), the command stops before the first step."""
    import errno
    import tempfile

    cfg, ckpt = fitted
    mount = tmp_path / "ro"
    mount.mkdir()
    real_mkstemp = tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):
        if dir is not None and os.path.abspath(dir) == str(mount):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    no_sampling(monkeypatch)
    assert main(*sample_args(cfg, ckpt, mount)) == 2
    one_line_error(capsys, str(mount), "Read-only file system")


def test_overwrite_replaces_only_the_files_of_the_set(tmp_path, main, capsys, fitted, monkeypatch):
    """A file that is not part of an output set (notes.txt) is never deleted: the folder
    is refused, naming it, with or without --overwrite."""
    cfg, ckpt = fitted
    out = tmp_path / "out"
    assert main(*sample_args(cfg, ckpt, out)) == 0
    (out / "notes.txt").write_text("mine")
    no_sampling(monkeypatch)
    for extra in ((), ("--overwrite", "true")):
        assert main(*sample_args(cfg, ckpt, out, *extra)) == 2
        one_line_error(capsys, str(out), "notes.txt", "not part of a sample output set")
        assert (out / "notes.txt").read_text() == "mine"
    # a subfolder is foreign too
    (out / "notes.txt").unlink()
    (out / "plots").mkdir()
    assert main(*sample_args(cfg, ckpt, out, "--overwrite", "true")) == 2
    one_line_error(capsys, "plots/")


def test_a_set_cut_short_while_publishing_is_replaceable(tmp_path, main, capsys, fitted):
    """A SIGKILL between the first and the last file of a publish leaves set files
    without summary.json: named as an incomplete set, replaced by --overwrite."""
    cfg, ckpt = fitted
    out = tmp_path / "out"
    assert main(*sample_args(cfg, ckpt, out)) == 0
    (out / "summary.json").unlink()
    assert main(*sample_args(cfg, ckpt, out)) == 2
    one_line_error(capsys, "incomplete output set", "--overwrite true")
    assert main(*sample_args(cfg, ckpt, out, "--overwrite", "true")) == 0
    assert (out / "summary.json").is_file()


def test_every_staged_file_is_registered(tmp_path):
    """A writer that stages a file unknown to lightning_ex2.output.files.SET_FILES fails loudly
    (so --overwrite knows every file of a set)."""
    from lightning_ex2.output.files import OutputSet

    out = OutputSet(tmp_path / "out")
    staging = out.begin()
    (staging / "summary.json").write_text("{}")
    (staging / "extra.bin").write_text("")
    with pytest.raises(RuntimeError, match="SET_FILES"):
        out.publish()


# ------------------------------------------------- every setting is compared
ISIR_CONFIG = """
seed_everything: 0
trainer:
  max_steps: 4
  accelerator: cpu
  enable_progress_bar: false
  logger: false
  default_root_dir: "{root}"
  callbacks:
    - class_path: pytorch_lightning.callbacks.ModelCheckpoint
      init_args: {{dirpath: "{root}/ckpt", save_last: true, save_top_k: 0}}
model:
  class_path: lightning_ex2.lightning.MCMCSampler
  init_args:
    target: {{class_path: lightning_ex2.targets.Funnel, init_args: {{dim: 3}}}}
    kernel:
      class_path: lightning_ex2.kernels.Ex2MCMC
      init_args:
        proposal:
          class_path: lightning_ex2.proposals.GaussianProposal
          init_args: {{dim: 3, scale: 3.0}}
        n_particles: 4
        step_size: 0.1
data: {{n_chains: 4}}
"""


def test_a_setting_stored_as_a_buffer_is_compared(tmp_path, main, capsys, monkeypatch):
    """The proposal's scale is a buffer, overwritten by the checkpoint's on load: a
    config that differs is refused, naming the entry and both values."""
    cfg = tmp_path / "isir.yaml"
    cfg.write_text(ISIR_CONFIG.format(root=tmp_path))
    assert main("fit", "--config", cfg) == 0
    ckpt = tmp_path / "ckpt" / "last.ckpt"
    no_sampling(monkeypatch)
    scale = "--model.init_args.kernel.init_args.proposal.init_args.scale"
    assert main(*sample_args(cfg, ckpt, tmp_path / "out", scale, "1.0")) == 2
    one_line_error(
        capsys, "kernel.isir.proposal.scale: checkpoint [3.0, 3.0, 3.0], config [1.0, 1.0, 1.0]"
    )
    # a checkpoint written before kernel buffers were recorded: compared by value
    state = torch.load(ckpt, weights_only=True)
    state["lightning_ex2_spec"] = {
        k: v
        for k, v in state["lightning_ex2_spec"].items()
        if not k.startswith("kernel.isir.proposal.") or not v.startswith("<tensor")
    }
    old = tmp_path / "old.ckpt"
    torch.save(state, old)
    assert main(*sample_args(cfg, old, tmp_path / "out", scale, "1.0")) == 2
    one_line_error(capsys, "kernel.isir.proposal.scale: checkpoint [3.0")


def test_override_runs_the_configs_kernel_buffers(tmp_path, main):
    """--override_ckpt runs what config.yaml records: the config's proposal scale, not
    the checkpoint's."""
    cfg = tmp_path / "isir.yaml"
    cfg.write_text(ISIR_CONFIG.format(root=tmp_path))
    assert main("fit", "--config", cfg) == 0
    ckpt = tmp_path / "ckpt" / "last.ckpt"
    seen = []
    from lightning_ex2.lightning.module import MCMCSampler

    real = MCMCSampler.predict_step

    def spy(self, *args, **kwargs):
        seen.append(self.kernel.isir.proposal.scale.tolist())
        return real(self, *args, **kwargs)

    scale = "--model.init_args.kernel.init_args.proposal.init_args.scale"
    import unittest.mock

    with unittest.mock.patch.object(MCMCSampler, "predict_step", spy):
        args = sample_args(cfg, ckpt, tmp_path / "out", scale, "1.0", "--override_ckpt", "true")
        assert main(*args) == 0
    assert seen == [[1.0, 1.0, 1.0]]


# ------------------------------------------------------- one run per folder
def test_a_run_that_left_no_checkpoint_restarts_with_the_same_command(
    tmp_path, main, capsys, fitted
):
    """A run killed before its first checkpoint leaves config.yaml (and events) only:
    the same command restarts it there; another config is refused."""
    cfg, ckpt = fitted
    run_dir = ckpt.parent.parent
    for p in ckpt.parent.iterdir():
        p.unlink()  # as if killed before the first checkpoint
    old_events = sorted(p.name for p in run_dir.glob("events.out.tfevents.*"))
    assert old_events
    assert main("fit", "--config", cfg, "--trainer.max_steps", 6) == 2
    one_line_error(capsys, "left no checkpoint", "another config", str(run_dir))
    assert main("fit", "--config", cfg) == 0
    assert torch.load(ckpt, weights_only=True)["global_step"] == 8
    events = sorted(p.name for p in run_dir.glob("events.out.tfevents.*"))
    assert len(events) == 1 and events != old_events  # the dead attempt's events are gone


def test_resuming_into_another_runs_folder_is_refused(tmp_path, main, capsys, fitted):
    cfg, ckpt_a = fitted
    assert main("fit", "--config", cfg, "--trainer.logger.init_args.version", "b") == 0
    run_b = tmp_path / "logs" / "run" / "b"
    before = {p.name: p.read_bytes() for p in (run_b / "checkpoints").iterdir()}
    config_b = (run_b / "config.yaml").read_bytes()
    args = ("fit", "--config", cfg, "--ckpt_path", ckpt_a, "--trainer.max_steps", 12)
    assert main(*args, "--trainer.logger.init_args.version", "b") == 2
    one_line_error(capsys, str(ckpt_a), str(ckpt_a.parent.parent), str(run_b))
    assert (run_b / "config.yaml").read_bytes() == config_b
    assert {p.name: p.read_bytes() for p in (run_b / "checkpoints").iterdir()} == before
    # continuing run A in a new folder is allowed (the checkpoint is A's)
    assert main(*args, "--trainer.logger.init_args.version", "a2") == 0
    new = tmp_path / "logs" / "run" / "a2" / "checkpoints" / "last.ckpt"
    assert torch.load(new, weights_only=True)["global_step"] == 12


# ------------------------------------------------- one-line config errors
@pytest.mark.parametrize(
    ("edit", "extra", "words"),
    [
        (
            ("step_size: 0.3", "step_siz: 0.3"),
            (),
            ("model.init_args.kernel.init_args.step_siz", "did you mean step_size?"),
        ),
        (("max_steps: 8", "max_step: 8"), (), ("trainer.max_step", "trainer.max_steps?")),
        (
            ("lightning_ex2.kernels.MALA", "lightning_ex2.kernels.MALAA"),
            (),
            ("model.init_args.kernel", "MALAA", "did you mean lightning_ex2.kernels.MALA?"),
        ),
        (
            ("lightning_ex2.kernels.MALA", "lightning_ex2.kernelz.MALA"),
            (),
            ("kernelz", "did you mean lightning_ex2.kernels.MALA?"),
        ),
        (("seed_everything: 0", "seed_everything: 0\nseed_everything: 1"), (), ("appears twice",)),
        (None, ("--trainer.max_stepz", "5"), ("--trainer.max_stepz", "--trainer.max_steps?")),
        (None, ("--data.n_chains", "0"), ("data.n_chains", "got 0")),
        (None, ("--data.n_chains", "abc"), ("n_chains", "expected int", "abc")),
    ],
    ids=["key", "trainer_key", "class", "module", "duplicate", "flag", "n_chains", "not_int"],
)
def test_config_mistakes_are_one_line_naming_the_key(tmp_path, main, capsys, edit, extra, words):
    cfg = write_config(tmp_path)
    if edit is not None:
        text = cfg.read_text()
        assert edit[0] in text
        cfg.write_text(text.replace(edit[0], edit[1], 1))
    assert main("fit", "--config", cfg, *extra) == 2
    line = one_line_error(capsys, *words)
    assert "usage:" not in capsys.readouterr().err and len(line) < 400
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize(
    ("edit", "args", "words"),
    [
        (
            ("save_top_k: 0", "save_topk: 0"),
            (),
            (
                "trainer.callbacks[0].init_args.save_topk",
                "ModelCheckpoint",
                "did you mean save_top_k?",
            ),
        ),
        (("save_dir:", "savedir:"), (), ("trainer.logger.init_args.savedir", "save_dir?")),
        (("lightning_ex2.kernels.MALA", "MALAA"), (), ("'MALAA'", "did you mean MALA?")),
        (None, ("--model.init_args.kernel.init_args.step_siz=0.3",), ("step_siz", "step_size?")),
        (("spacing: 5.0", "spacing: abc"), (), ("target.init_args.spacing", "expected float")),
    ],
    ids=["callback", "logger", "short_class", "nested_flag", "not_float"],
)
def test_mistakes_inside_classes_name_the_full_key(tmp_path, main, capsys, edit, args, words):
    cfg = write_config(tmp_path)
    if edit is not None:
        cfg.write_text(cfg.read_text().replace(*edit, 1))
    assert main("fit", "--config", cfg, *args) == 2
    one_line_error(capsys, *words)


def test_an_unknown_command_is_one_line(main, capsys):
    assert main("fitt") == 2
    one_line_error(capsys, "unknown command 'fitt'", "did you mean fit?")


def test_non_numeric_sample_option_is_one_line(tmp_path, main, capsys, fitted):
    cfg, ckpt = fitted
    assert main(*sample_args(cfg, ckpt, tmp_path / "out", "--n_steps", "abc")) == 2
    one_line_error(capsys, "n_steps", "abc")


# ------------------------------------- run input and machine errors: one line
BAD_TARGETS = """
from torch import nn


class _Base(nn.Module):
    def __init__(self, dim: int = 2):
        super().__init__()
        self.dim = dim


class Float64(_Base):
    def log_prob(self, x):
        return (-0.5 * (x**2).sum(-1)).double()


class Int64(_Base):
    def log_prob(self, x):
        return (-0.5 * (x**2).sum(-1)).long()


class Detached(_Base):
    def log_prob(self, x):
        return (-0.5 * (x**2).sum(-1)).detach()
"""


@pytest.mark.parametrize(
    ("target", "extra", "words"),
    [
        ("bad_targets.Float64", (), ("model.target (Float64)", "float32", "float64")),
        ("bad_targets.Int64", (), ("model.target (Int64)", "int64")),
        ("bad_targets.Detached", (), ("Detached.log_prob is not differentiable in x",)),
        (None, ("--data.init_loc", "[.nan, 0.0]"), ("non-finite start point",)),
    ],
    ids=["float64", "int64", "detached", "nonfinite_start"],
)
def test_bad_run_input_is_one_line(tmp_path, main, capsys, monkeypatch, target, extra, words):
    (tmp_path / "bad_targets.py").write_text(BAD_TARGETS)
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = write_config(
        tmp_path, **({"target": target, "target_args": "{dim: 2}"} if target else {})
    )
    assert main("fit", "--config", cfg, *extra) == 2
    one_line_error(capsys, *words)


def test_a_full_disk_is_one_line_and_keeps_the_previous_set(
    tmp_path, main, capsys, fitted, monkeypatch
):
    import errno

    cfg, ckpt = fitted
    out = tmp_path / "out"
    assert main(*sample_args(cfg, ckpt, out)) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def full(path, **arrays):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr("lightning_ex2.output.writer.save_npz", full)
    assert main(*sample_args(cfg, ckpt, out, "--n_steps", 7, "--overwrite", "true")) == 2
    one_line_error(capsys, "No space left on device", "samples.npz")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_progress_bar_ends_at_the_last_step(tmp_path, main, capsys):
    """Each epoch is one sweep (one step here): the bar counts MCMC steps over the
    whole run, and its last line is the last step (Lightning reports 0 batches for the
    epoch max_steps cuts, which used to reset the bar)."""
    cfg = write_config(tmp_path, steps=6)
    assert main("fit", "--config", cfg, "--trainer.enable_progress_bar", "true") == 0
    captured = capsys.readouterr()
    text = (captured.out + captured.err).replace("\r", "\n")
    lines = [line for line in text.splitlines() if "Fit (" in line]
    assert lines and "6/6" in lines[-1], lines[-3:]


def test_sample_without_checkpoint_warns_about_what_this_model_has(tmp_path, main):
    """A MALA model has no flow: the warning names its step size and fresh chains only."""
    cfg = write_config(tmp_path)
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match="no --ckpt_path") as rec:
        args = ("sample", "--config", cfg, "--n_steps", 3, "--output_dir", out)
        assert main(*args, "--progress", "false") == 0
    (text,) = [str(w.message) for w in rec if "no --ckpt_path" in str(w.message)]
    assert "flow" not in text and "proposal" not in text
    assert "initial step size" in text and "fresh" in text


def test_sample_never_creates_a_log_version(tmp_path, main, recwarn):
    """With the fit config (a logger that numbers its versions), sample adds no
    version_N folder and no hparams.yaml, and warns nothing about checkpoint dirpaths nor
    about the fit run's ModelCheckpoint, which sample runs without on purpose."""
    cfg = write_config(tmp_path)
    cfg.write_text(cfg.read_text().replace(", version: fit}", "}"))
    assert main("fit", "--config", cfg) == 0
    root = tmp_path / "logs" / "run"
    assert sorted(p.name for p in root.iterdir()) == ["version_0"]
    ckpt = root / "version_0" / "checkpoints" / "last.ckpt"
    recwarn.clear()
    args = ("sample", "--config", cfg, "--ckpt_path", ckpt, "--n_steps", 3, "--progress", "false")
    assert main(*args) == 0
    assert sorted(p.name for p in root.iterdir()) == ["version_0"]
    assert (root / "version_0" / "samples" / "summary.json").is_file()
    assert not [w for w in recwarn if "dirpath has changed" in str(w.message)]
    assert not [w for w in recwarn if "callbacks used to create" in str(w.message)]
    events = list((root / "version_0" / "samples").glob("events.out.tfevents.*"))
    assert len(events) == 1  # sample's TensorBoard scalars and figures, in its set


# ------------------------------------------------------------------ threads
@pytest.mark.parametrize(
    ("env", "flag", "expected"),
    [
        ({"SLURM_CPUS_PER_TASK": "1"}, (), 1),
        ({"OMP_NUM_THREADS": "2", "SLURM_CPUS_PER_TASK": "1"}, (), 2),
        ({"OMP_NUM_THREADS": "2"}, ("--threads", "1"), 1),
    ],
    ids=["slurm", "omp_wins", "flag_wins"],
)
def test_thread_count_is_a_setting_chosen_from_the_environment(
    tmp_path, monkeypatch, env, flag, expected
):
    cfg = write_config(tmp_path)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    before = torch.get_num_threads()
    try:
        cli.build_cli(["--config", str(cfg), *flag], run=False)
        assert torch.get_num_threads() == expected
        assert os.environ["OMP_NUM_THREADS"] == str(expected)  # for the ranks DDP starts
    finally:
        torch.set_num_threads(before)


def test_stop_during_overwrite_says_the_complete_set_was_replaced(
    tmp_path, main, capsys, fitted, monkeypatch
):
    """The documented choice: with --overwrite true a stopped run's partial set replaces
    the complete one (the draws just made are kept), and its last line says so."""
    cfg, ckpt = fitted
    out = tmp_path / "out"
    assert main(*sample_args(cfg, ckpt, out)) == 0
    capsys.readouterr()
    stop_after(monkeypatch, 30)
    assert main(*sample_args(cfg, ckpt, out, "--n_steps", 1000, "--overwrite", "true")) == 143
    one_line_error(capsys, "partial outputs", "replaced the complete set", str(out))
    assert json.loads((out / "summary.json").read_text())["complete"] is False
