"""SIGTERM/SIGINT stop a run cleanly: ``fit`` saves a resumable ``last.ckpt`` and exits
128 + signal; ``sample`` keeps the draws made as a set marked ``"complete": false``.

Each run is a separate ``lightning-ex2`` process in its own process group, signalled
once it is past start-up (a checkpoint or a marker file exists), and killed whole at
the end, so no child outlives the test.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.multiprocess.processes import kill_group

WAIT = 240  # seconds a run may take to reach the point where it is signalled (a deadline)

CONFIG = """
seed_everything: 0
trainer:
  max_steps: {steps}
  accelerator: cpu
  devices: {devices}
  strategy: {strategy}
  enable_progress_bar: false
  logger:
    class_path: pytorch_lightning.loggers.TensorBoardLogger
    init_args: {{save_dir: "{root}/logs", name: run, version: fit}}
  callbacks:
    - class_path: pytorch_lightning.callbacks.ModelCheckpoint
      init_args: {{save_last: true, save_top_k: 0, every_n_train_steps: 5}}
model:
  class_path: lightning_ex2.lightning.MCMCSampler
  init_args:
    target:
      class_path: slow_target.Marked
      init_args: {{marker: "{root}/marker", after: {after}}}
    kernel:
      class_path: lightning_ex2.kernels.MALA
      init_args: {{step_size: 0.3, target_accept: 0.574}}
data:
  n_chains: 8
"""

TARGET = '''
import os
import time
from pathlib import Path

import torch
from torch import nn


class Marked(nn.Module):
    """A standard 2-D Gaussian that creates ``marker`` after ``after`` log_prob calls
    (and from then on sleeps ``$MARKED_DELAY`` seconds per call, when set)."""

    def __init__(self, marker: str, after: int = 50):
        super().__init__()
        self.dim = 2
        self.marker = marker
        self.after = after
        self.calls = 0

    def log_prob(self, x):
        self.calls += 1
        if self.calls == self.after:
            Path(self.marker).touch()
        if self.calls >= self.after:
            time.sleep(float(os.environ.get("MARKED_DELAY", "0")))
        return -0.5 * (x**2).sum(-1)
'''


def write(root: Path, steps: int = 10**6, after: int = 10**9, devices: int = 1) -> Path:
    (root / "slow_target.py").write_text(textwrap.dedent(TARGET))
    path = root / "config.yaml"
    strategy = "ddp" if devices > 1 else "auto"
    path.write_text(
        CONFIG.format(root=root, steps=steps, after=after, devices=devices, strategy=strategy)
    )
    return path


def start(
    root: Path, *args: str, command: list[str] | None = None, **extra_env: str
) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
        **extra_env,
    }
    env.pop("LIGHTNING_EX2_DEBUG", None)
    # output to files: a full pipe would block the run while the test waits for it
    log = open(root / "run.log", "w")  # noqa: SIM115 - closed when the process ends
    proc = subprocess.Popen(
        command or [sys.executable, "-m", "lightning_ex2.lightning.cli", *args],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()  # the child holds its own copy
    return proc


def output(root: Path) -> str:
    return (root / "run.log").read_text()


def signal_when(root: Path, proc: subprocess.Popen, ready: Path, signum: int) -> tuple[int, str]:
    """Send ``signum`` once ``ready`` exists; return the exit status and the output."""
    try:
        deadline = time.monotonic() + WAIT
        while not ready.exists():
            assert proc.poll() is None, output(root)
            assert time.monotonic() < deadline, f"{ready} never appeared"
            time.sleep(0.1)
        proc.send_signal(signum)
        proc.wait(timeout=WAIT)
    finally:
        kill_group(proc)
    return proc.returncode, output(root)


def children(pid: int) -> list[int]:
    """The pids of the processes whose parent is ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def run(root: Path, *args: str) -> str:
    proc = start(root, *args)
    try:
        proc.wait(timeout=WAIT)
    finally:
        kill_group(proc)
    assert proc.returncode == 0, output(root)[-3000:]
    return output(root)


def last_line(err: str) -> str:
    assert "Traceback" not in err, err
    return [line for line in err.splitlines() if line.startswith("lightning-ex2: ")][-1]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_fit_stops_with_a_resumable_checkpoint(tmp_path, signum):
    cfg = write(tmp_path)
    ckpt = tmp_path / "logs" / "run" / "fit" / "checkpoints" / "last.ckpt"
    proc = start(tmp_path, "fit", "--config", str(cfg))
    code, err = signal_when(tmp_path, proc, ckpt, signum)
    assert code == 128 + signum, err[-3000:]
    line = last_line(err)
    assert signal.Signals(signum).name in line and f"checkpoint saved to {ckpt}" in line
    step = torch.load(ckpt, weights_only=True)["global_step"]
    stopped_at = int(re.search(r"at step (\d+);", line).group(1))
    assert step == stopped_at >= 5  # saved at the stop, not only a periodic checkpoint
    assert sorted(p.name for p in ckpt.parent.iterdir()) == ["last.ckpt"]

    # resumable: continues from there to max_steps, in the same folder (a multiple of
    # every_n_train_steps, so that the final step is checkpointed)
    final = (step // 5 + 2) * 5
    log = run(
        tmp_path,
        "fit",
        "--config",
        str(cfg),
        "--ckpt_path",
        str(ckpt),
        "--trainer.max_steps",
        str(final),
    )
    assert "Restored all states" in log
    assert torch.load(ckpt, weights_only=True)["global_step"] == final


def test_sample_stops_and_keeps_a_partial_set(tmp_path):
    # the marker appears after 300 log_prob calls of a process: well inside sampling
    # (fit's 10 steps make far fewer)
    cfg = write(tmp_path, steps=10, after=300)
    run(tmp_path, "fit", "--config", str(cfg))
    ckpt = tmp_path / "logs" / "run" / "fit" / "checkpoints" / "last.ckpt"
    assert not (tmp_path / "marker").exists()
    out = tmp_path / "samples"
    n_steps = 200_000
    proc = start(
        tmp_path,
        "sample",
        "--config",
        str(cfg),
        "--ckpt_path",
        str(ckpt),
        "--n_steps",
        str(n_steps),
        "--output_dir",
        str(out),
        "--progress",
        "false",
    )
    code, err = signal_when(tmp_path, proc, tmp_path / "marker", signal.SIGTERM)
    assert code == 143, err[-3000:]
    assert "complete" in last_line(err) and str(out) in last_line(err)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is False and summary["stopped_by"] == "SIGTERM"
    assert 0 < summary["n_draws"] < n_steps
    data = np.load(out / "samples.npz")
    assert data["samples"].shape == (8, summary["n_draws"], 2)
    assert list(data["chain_index"]) == list(range(8))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.ddp
def test_two_processes_stop_together(tmp_path):
    """DDP (2 processes, gloo): SIGTERM to rank 0 (Lightning forwards it to rank 1);
    both ranks stop at the same step, the checkpoint holds both ranks' chains, and
    ``sample`` keeps one consistent partial set."""
    cfg = write(tmp_path, after=300, devices=2)
    ckpt = tmp_path / "logs" / "run" / "fit" / "checkpoints" / "last.ckpt"
    proc = start(tmp_path, "fit", "--config", str(cfg))
    code, err = signal_when(tmp_path, proc, ckpt, signal.SIGTERM)
    assert code == 143, err[-3000:]
    assert "checkpoint saved to" in last_line(err)
    state = torch.load(ckpt, weights_only=True)
    stopped_at = int(re.search(r"at step (\d+);", last_line(err)).group(1))
    assert state["lightning_ex2_rng"].shape[0] == 2 and state["global_step"] == stopped_at
    assert bool(state["state_dict"]["chain_ready"].all())

    # sample: SIGTERM to rank 1 only (not the process that launched it): it passes the
    # signal to rank 0, which passes it to all; one consistent partial set
    (tmp_path / "marker").unlink(missing_ok=True)
    out = tmp_path / "samples"
    proc = start(tmp_path, "sample", "--config", str(cfg), "--ckpt_path", str(ckpt),
                 "--n_steps", "200000", "--output_dir", str(out), "--progress", "false")  # fmt: skip
    try:
        deadline = time.monotonic() + WAIT
        while not (tmp_path / "marker").exists():
            assert proc.poll() is None, output(tmp_path)
            assert time.monotonic() < deadline, "the marker never appeared"
            time.sleep(0.1)
        (rank1,) = children(proc.pid)
        os.kill(rank1, signal.SIGTERM)
        proc.wait(timeout=WAIT)
    finally:
        kill_group(proc)
    code, err = proc.returncode, output(tmp_path)
    assert code == 143, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is False and summary["world_size"] == 2
    assert summary["stopped_by"] == "SIGTERM"
    data = np.load(out / "samples.npz")
    assert data["samples"].shape == (8, summary["n_draws"], 2) and summary["n_draws"] > 0
    assert list(data["chain_index"]) == list(range(8))


@pytest.mark.ddp
def test_a_rank_killed_ends_rank_0_in_one_line_with_a_resumable_checkpoint(tmp_path):
    """DDP (2 processes, gloo): SIGKILL to rank 1 after the first checkpoint; rank 0's
    next collective fails: it ends with one line naming the checkpoint to resume from
    (exit status 1), no traceback, no process left, the folder's lock released."""
    cfg = write(tmp_path, devices=2)
    ckpt = tmp_path / "logs" / "run" / "fit" / "checkpoints" / "last.ckpt"
    proc = start(tmp_path, "fit", "--config", str(cfg), MARKED_DELAY="0.02")
    try:
        deadline = time.monotonic() + WAIT
        while not ckpt.exists():
            assert proc.poll() is None, output(tmp_path)
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.1)
        (rank1,) = children(proc.pid)
        os.kill(rank1, signal.SIGKILL)
        proc.wait(timeout=WAIT)
    finally:
        kill_group(proc)
    code, err = proc.returncode, output(tmp_path)
    assert code == 1, err[-3000:]
    line = last_line(err)
    assert "another process of the run ended unexpectedly" in line, line
    assert f"--ckpt_path {ckpt}" in line, line
    step = int(re.search(r"resume from step (\d+)", line).group(1))
    assert torch.load(ckpt, weights_only=True)["global_step"] == step > 0
    assert not (ckpt.parent.parent / ".lightning-ex2.lock").exists()


# the recipe lives in the docs page (docs/stopping.md); the repository root is found by
# walking up, so the test may move within tests/
ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
RECIPE_PAGE = ROOT / "docs" / "stopping.md"


def slurm_recipe(cfg: Path, ckpt: Path) -> str:
    """The docs' SLURM requeue recipe (the lines from ``CKPT=`` to ``exit``), made to
    run here: no srun/scontrol, one CPU process, this test's config and folder."""
    text = RECIPE_PAGE.read_text()
    section = text[text.index("# Stopping, preemption and SLURM") :]
    block = section[section.index("```bash") : section.index("```", section.index("```bash") + 7)]
    lines = block[block.index("CKPT=") : block.index('exit "$rc"') + len('exit "$rc"')]
    subs = [
        (r"^CKPT=\S+", f"CKPT={ckpt}"),
        (r"srun lightning-ex2 ", f"{sys.executable} -m lightning_ex2.lightning.cli "),
        (r"--config \S+", f"--config {cfg}"),
        (r" \\\n\s*--trainer\.accelerator gpu[^\n]*", ""),
        (r'scontrol requeue "\$SLURM_JOB_ID"', "echo REQUEUE"),
    ]
    for pattern, repl in subs:
        lines, n = re.subn(pattern, repl, lines, count=1, flags=re.M)
        assert n == 1, f"the recipe in docs/stopping.md changed: {pattern!r} not found in {lines}"
    return lines


def test_slurm_recipe_restarts_a_run_killed_before_its_first_checkpoint(tmp_path):
    """SIGKILL (OOM killer, node failure) before the first checkpoint: config.yaml
    exists, no checkpoint; the recipe's command, run again, restarts the run."""
    cfg = write(tmp_path, steps=10, after=3)
    ckpt = tmp_path / "logs" / "run" / "fit" / "checkpoints" / "last.ckpt"
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/bash\n" + slurm_recipe(cfg, ckpt) + "\n")
    proc = start(tmp_path, command=["bash", str(script)], MARKED_DELAY="5")
    try:
        deadline = time.monotonic() + WAIT
        while not (tmp_path / "marker").exists():
            assert proc.poll() is None, output(tmp_path)
            assert time.monotonic() < deadline, "the run never started its steps"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # the whole job, as a node failure would
        proc.wait(timeout=WAIT)
    finally:
        kill_group(proc)
    assert (ckpt.parent.parent / "config.yaml").is_file() and not ckpt.exists()
    (tmp_path / "marker").unlink()
    proc = start(tmp_path, command=["bash", str(script)])  # the requeued job
    try:
        proc.wait(timeout=WAIT)
    finally:
        kill_group(proc)
    assert proc.returncode == 0, output(tmp_path)[-3000:]
    assert "REQUEUE" not in output(tmp_path)
    assert torch.load(ckpt, weights_only=True)["global_step"] == 10


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM])
def test_a_second_signal_keeps_the_one_stop(tmp_path, second):
    """SIGINT then SIGTERM/SIGINT again while the stop is under way (each step slow):
    one stop, the first signal's status, the partial set, one line per extra signal."""
    cfg = write(tmp_path, steps=4, after=10**9)
    run(tmp_path, "fit", "--config", str(cfg))
    ckpt = tmp_path / "logs" / "run" / "fit" / "checkpoints" / "last.ckpt"
    cfg = write(tmp_path, steps=4, after=40)
    out = tmp_path / "samples"
    proc = start(tmp_path, "sample", "--config", str(cfg), "--ckpt_path", str(ckpt),
                 "--n_steps", "100000", "--output_dir", str(out), "--progress", "false",
                 "--override_ckpt", "true", MARKED_DELAY="0.3")  # fmt: skip
    try:
        deadline = time.monotonic() + WAIT
        while not (tmp_path / "marker").exists():
            assert proc.poll() is None, output(tmp_path)
            assert time.monotonic() < deadline, "the marker never appeared"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
        proc.send_signal(second)
        proc.wait(timeout=WAIT)
    finally:
        kill_group(proc)
    err = output(tmp_path)
    assert proc.returncode == 130, err[-3000:]
    assert "KeyboardInterrupt" not in err and "received while stopping on SIGINT" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is False and summary["stopped_by"] == "SIGINT"
    assert summary["n_draws"] > 0


@pytest.mark.ddp  # real signals to whole processes: in the separate multi-process run
def test_sigterm_before_the_first_periodic_save_then_requeue_keeps_one_last_ckpt(tmp_path):
    """The SLURM form of "one last.ckpt": SIGTERM before the first periodic checkpoint
    (the guard writes last.ckpt), the requeued resume passes a periodic checkpoint and
    is stopped again: one last.ckpt, the newest step, no last-v1.ckpt."""
    cfg = write(tmp_path, after=3)  # marker at the 3rd log_prob: before step 5
    folder = tmp_path / "logs" / "run" / "fit" / "checkpoints"
    ckpt = folder / "last.ckpt"
    proc = start(tmp_path, "fit", "--config", str(cfg), MARKED_DELAY="0.05")
    code, err = signal_when(tmp_path, proc, tmp_path / "marker", signal.SIGTERM)
    assert code == 143, err[-3000:]
    first = torch.load(ckpt, weights_only=True)["global_step"]
    assert 0 < first < 5
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    proc = start(tmp_path, "fit", "--config", str(cfg), "--ckpt_path", str(ckpt))
    try:  # stop it once a periodic checkpoint was written (whatever its name)
        deadline = time.monotonic() + WAIT
        while {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before:
            assert proc.poll() is None, output(tmp_path)
            assert time.monotonic() < deadline, "no periodic checkpoint after the resume"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=WAIT)
    finally:
        kill_group(proc)
    assert proc.returncode == 143, output(tmp_path)[-3000:]
    stopped_at = int(re.search(r"at step (\d+);", last_line(output(tmp_path))).group(1))
    assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt"]
    assert torch.load(ckpt, weights_only=True)["global_step"] == stopped_at >= 5
