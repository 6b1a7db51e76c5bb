"""What the machine must give a run is checked before its first step, or cannot lose the
draws: a read-only or missing $HOME, memory for the chains, disk room and path length
for the set, the rank variables a scheduler sets; and the small one-line refusals of
configs and values that no run could use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lightning_ex2 import environment
from lightning_ex2.errors import UserError
from tests.cli import test_safety
from tests.cli.test_safety import no_sampling, one_line_error, write_config

ROOT = Path(__file__).resolve().parents[2]
main = test_safety.main  # the fixture: ``lightning-ex2 ARGS`` in-process


def _unwritable_home(tmp_path: Path) -> Path:
    """A $HOME nothing can be created in: a read-only folder, or (root writes into
    those) a path through a regular file."""
    if os.geteuid() != 0:
        home = tmp_path / "home"
        home.mkdir(mode=0o555)
        return home
    (tmp_path / "file").write_text("")
    return tmp_path / "file" / "home"


# ------------------------------------------------------------------ $HOME
def test_sample_with_a_read_only_home_writes_its_set(tmp_path):
    """The issue's case, in a fresh process (ArviZ writes its cache when first imported):
    before, the draws were made and then lost to ArviZ's cache error."""
    cfg = write_config(tmp_path)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in environment.CACHE_VARIABLES}
    env.update(HOME=str(_unwritable_home(tmp_path)), PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    args = ["sample", "--config", cfg, "--n_steps", "4", "--output_dir", out, "--progress", "false"]
    done = subprocess.run(
        [sys.executable, "-m", "lightning_ex2.lightning.cli", *map(str, args)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((out / "summary.json").read_text())["n_draws"] == 4


@pytest.mark.parametrize("case", ["read_only", "unset", "cache_variable"])
def test_unwritable_cache_folders_are_moved_before_any_work(tmp_path, monkeypatch, case):
    """Varied: $HOME read-only, $HOME unset with no password entry (``~`` stays
    relative), or a cache variable set to a folder that cannot be written."""
    for variable in environment.CACHE_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    if case == "read_only":
        monkeypatch.setenv("HOME", str(_unwritable_home(tmp_path)))
    elif case == "unset":
        monkeypatch.delenv("HOME")
        monkeypatch.setattr(os.path, "expanduser", lambda p: p)  # no password entry
    else:
        monkeypatch.setenv("HOME", str(tmp_path / "fine"))
        monkeypatch.setenv("MPLCONFIGDIR", str(_unwritable_home(tmp_path)))
    changed = environment.ensure_writable_caches()
    wanted = {"MPLCONFIGDIR"} if case == "cache_variable" else set(environment.CACHE_VARIABLES)
    assert set(changed) == wanted
    for variable in wanted:
        assert os.environ[variable] == changed[variable]
        assert Path(changed[variable]).is_relative_to(tmp_path / "tmp")
        assert environment.writable(Path(changed[variable]))


def test_no_writable_folder_at_all_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(_unwritable_home(tmp_path)))
    for variable in environment.CACHE_VARIABLES:
        monkeypatch.delenv(variable, raising=False)

    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr("tempfile.mkdtemp", read_only)
    with pytest.raises(UserError, match="XDG_CACHE_HOME, MPLCONFIGDIR") as info:
        environment.ensure_writable_caches()
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------ sizes
def test_a_billion_chains_is_refused_naming_the_estimate(tmp_path, main, capsys, monkeypatch):
    monkeypatch.setattr(environment, "available_memory", lambda: 4 * 2**30)
    cfg = write_config(tmp_path)
    assert main("fit", "--config", cfg, "--data.n_chains", 1_000_000_000) == 2
    one_line_error(capsys, "data.n_chains", "1000000000 chains", "GiB", "4 GiB available")
    assert not (tmp_path / "logs").exists() or not any((tmp_path / "logs").rglob("*.ckpt"))


def test_python_api_huge_sizes_are_a_clear_value_error(monkeypatch):
    import torch

    import lightning_ex2 as lx

    monkeypatch.setattr(environment, "available_memory", lambda: 2**30)
    target = lx.targets.Gaussian(torch.zeros(2))
    isir = lx.kernels.ISIR(lx.proposals.GaussianProposal(2, scale=3.0), n_particles=10**9)
    for kernel, chains, words in (
        (lx.MALA(step_size=0.5), 10**9, "1000000000 chains"),
        (isir, 4, "1000000000 particles"),
    ):
        with pytest.raises(ValueError, match=words) as info:
            lx.sample(target, kernel, n_chains=chains, n_steps=10, progress=False)
        assert "GiB" in str(info.value) and "n_chains, n_particles or n_steps" in str(info.value)


def test_sample_refuses_a_set_the_disk_cannot_hold(tmp_path, main, capsys, monkeypatch):
    import shutil

    cfg = write_config(tmp_path)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=2**20))
    no_sampling(monkeypatch)
    out = tmp_path / "out"
    args = ("sample", "--config", cfg, "--n_steps", 4, "--output_dir", out, "--progress", "false")
    assert main(*args) == 2
    one_line_error(capsys, str(out), "GiB free", "needs about")


@pytest.mark.parametrize("case", ["long_name", "long_path"])
def test_an_over_long_output_path_is_refused_before_sampling(
    tmp_path, main, capsys, monkeypatch, case
):
    cfg = write_config(tmp_path)
    if case == "long_name":
        out = tmp_path / ("n" * 300)
        words = ("a folder name of 300 bytes",)
    else:  # each name fits, the whole leaves no room for the set's files
        out = tmp_path
        while len(str(out)) < 4096 - 150:
            out = out / ("p" * 100)
        words = ("the path is too long",)
    no_sampling(monkeypatch)
    args = ("sample", "--config", cfg, "--n_steps", 4, "--output_dir", out, "--progress", "false")
    assert main(*args) == 2
    one_line_error(capsys, *words)


# ------------------------------------------------------------------ one-line refusals
@pytest.mark.parametrize(
    ("text", "words"),
    [("", "is empty"), ("- a\n- b\n", "holds a list"), ("42\n", "holds a single value")],
    ids=["empty", "list", "scalar"],
)
def test_a_config_that_is_not_a_mapping_is_one_line(tmp_path, main, capsys, text, words):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    assert main("fit", "--config", cfg) == 2
    one_line_error(capsys, str(cfg), words, "not a mapping of options")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", ".nan"])
def test_a_non_finite_step_size_is_one_line(tmp_path, main, capsys, value):
    cfg = write_config(tmp_path)
    key = "--model.init_args.kernel.init_args.step_size"
    assert main("fit", "--config", cfg, f"{key}={value}") == 2
    line = one_line_error(capsys, "step_size")
    assert value.lstrip(".") in line and "<class" not in line and "Expected" not in line


def test_a_garbage_rank_variable_is_one_line(tmp_path):
    env = {**os.environ, "SLURM_PROCID": "garbage", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "lightning_ex2.lightning.cli", "fit", "--help"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "lightning-ex2: error: SLURM_PROCID='garbage' is not a process rank (an integer >= 0); "
        "unset it or fix the job script that sets it"
    ]
    assert environment.rank_variable_problem({"RANK": "-1"}) is not None
    assert environment.rank_variable_problem({"LOCAL_RANK": "3", "SLURM_PROCID": "0"}) is None


def test_a_truncated_samples_nc_is_one_line_from_load_output_set(tmp_path):
    import numpy as np

    from lightning_ex2.output.files import (
        OutputSet,
        load_output_set,
        save_json,
        save_netcdf,
        save_npz,
    )
    from lightning_ex2.output.netcdf import build_groups

    samples = np.zeros((2, 5, 2), dtype=np.float32)
    log_prob = np.zeros((2, 5), dtype=np.float32)
    out = OutputSet(tmp_path / "out")
    staging = out.begin()
    save_npz(staging / "samples.npz", samples=samples, log_prob=log_prob, chain_index=np.arange(2))
    save_netcdf(staging / "samples.nc", build_groups(samples, log_prob, {}, {}))
    save_json(staging / "summary.json", {"n_draws": 5})
    dest = out.publish()
    load_output_set(dest)
    nc = dest / "samples.nc"
    data = nc.read_bytes()
    nc.write_bytes(data[: len(data) // 2])  # a copy cut short
    with pytest.raises(ValueError, match=r"samples\.nc is damaged") as info:
        load_output_set(dest)
    assert "\n" not in str(info.value)
    (dest / "manifest.json").unlink()  # a set of a version without a manifest: read fails
    with pytest.raises(ValueError, match=r"samples\.nc cannot be read") as info:
        load_output_set(dest)
    assert "\n" not in str(info.value)


def test_validate_writes_no_file(tmp_path, main, fitted_run):
    cfg, ckpt = fitted_run
    run_dir = ckpt.parent.parent
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for command in ("validate", "test"):
        assert main(command, "--config", cfg, "--ckpt_path", ckpt) == 0
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1  # fit's own


@pytest.fixture
def fitted_run(tmp_path, main):
    cfg = write_config(tmp_path, steps=4)
    assert main("fit", "--config", cfg) == 0
    return cfg, tmp_path / "logs" / "run" / "fit" / "checkpoints" / "last.ckpt"


def test_thread_count_from_the_affinity_mask():
    assert environment.choose_threads(environ={}, affinity=3) == 3
    assert environment.choose_threads(environ={"SLURM_CPUS_PER_TASK": "8"}, affinity=3) == 3
    assert environment.choose_threads(environ={}, affinity=3, processes=2) == 1
    with pytest.raises(ValueError, match="OMP_NUM_THREADS"):
        environment.choose_threads(environ={"OMP_NUM_THREADS": "many"}, affinity=3)
