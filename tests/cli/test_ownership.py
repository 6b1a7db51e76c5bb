"""What the product may delete, and who may write a folder.

* An output set is what its manifest (``manifest.json``, written before the set's
  files) lists: ``--overwrite`` removes only those files, unchanged; a folder holding
  a user's own ``config.yaml`` or TensorBoard events is never taken for a set.
* One process per run folder and per output set: a real second process holds the
  folder's lock (``lightning_ex2/output/lock.py`` loaded alone, so it starts in well under
  a second); a live holder is refused in one line naming it, a dead one's lock is
  taken over, and staging folders are removed only under the lock (whatever PID their
  names carry: a run in another PID namespace keeps its own).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lightning_ex2.errors import UserError
from lightning_ex2.output import files as io
from lightning_ex2.output.files import MANIFEST, OutputSet
from lightning_ex2.output.lock import LOCK_NAME, LockHeld, RunLock
from tests.cli import test_safety
from tests.cli.test_safety import no_sampling, one_line_error, write_config
from tests.multiprocess.processes import kill_group

RUNLOCK = Path(io.__file__).with_name("lock.py")
main = test_safety.main  # the fixture: ``lightning-ex2 ARGS`` in-process


def staged_set(out: OutputSet, **files: str) -> Path:
    """Stage a small set (``summary.json`` always) in ``out`` and return the staging folder."""
    staging = out.begin()
    for name, text in {"samples.npz": "draws", "summary.json": "{}", **files}.items():
        (staging / name).write_text(text)
    return staging


def publish(dest: Path, overwrite: bool = False, **files: str) -> None:
    out = OutputSet(dest, overwrite=overwrite)
    staged_set(out, **files)
    out.publish()


# ------------------------------------------------------------------ the manifest
@pytest.mark.parametrize("name", ["config.yaml", "events.out.tfevents.1700000000.host.1.0"])
def test_a_users_lone_config_or_events_file_is_never_deleted(
    tmp_path, main, capsys, monkeypatch, name
):
    """The issue's case: a folder holding only the user's own config.yaml (or events
    file) is not "an incomplete output set"; --overwrite true does not delete it."""
    cfg = write_config(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / name).write_text("mine")
    no_sampling(monkeypatch)
    args = ("sample", "--config", cfg, "--n_steps", 4, "--output_dir", out, "--progress", "false")
    for extra in ((), ("--overwrite", "true")):
        assert main(*args, *extra) == 2
        line = one_line_error(capsys, str(out), name, "not part of a sample output set")
        assert "incomplete output set" not in line
        assert (out / name).read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == [name]  # no lock or staging left


def test_overwrite_removes_only_unchanged_files_the_manifest_lists(tmp_path):
    """Varied: inside a set the product wrote, a listed file the user changed, and a
    file with a set's name that the manifest does not list, are the user's."""
    dest = tmp_path / "out"
    publish(dest, **{"config.yaml": "n_steps: 1\n"})
    manifest = json.loads((dest / MANIFEST).read_text())
    assert sorted(manifest["files"]) == ["config.yaml", "samples.npz", "summary.json"]
    assert manifest["files"]["config.yaml"]["size"] == len("n_steps: 1\n")
    OutputSet(dest, overwrite=True).check()  # the product's own set: replaceable

    (dest / "config.yaml").write_text("n_steps: 2  # edited by hand\n")
    with pytest.raises(UserError, match=r"config\.yaml"):
        OutputSet(dest, overwrite=True).check()
    (dest / "config.yaml").write_text("n_steps: 1\n")  # as written: the set's again
    (dest / "pair.png").write_text("my own figure")  # a set's name, not in the manifest
    with pytest.raises(UserError, match=r"pair\.png"):
        OutputSet(dest, overwrite=True).check()
    (dest / "pair.png").unlink()
    publish(dest, overwrite=True, **{"trace.png": "new"})  # replaces the set whole
    assert sorted(p.name for p in dest.iterdir()) == [
        MANIFEST,
        "samples.npz",
        "summary.json",
        "trace.png",
    ]


def test_a_publish_cut_short_leaves_every_file_listed(tmp_path, monkeypatch):
    """The manifest is written before the first file moves in: a publish killed half-way
    (old and new files mixed, no summary.json) is still the product's, replaceable."""
    dest = tmp_path / "out"
    publish(dest, **{"config.yaml": "old"})
    real = os.replace
    calls = {"n": 0}

    def die_after_one(src, dst, *a, **k):
        if Path(dst).parent == dest and Path(dst).name != MANIFEST:
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt  # a SIGKILL: nothing runs after it
        return real(src, dst, *a, **k)

    out = OutputSet(dest, overwrite=True)
    staged_set(out, **{"config.yaml": "new", "rank.png": "png"})
    monkeypatch.setattr(os, "replace", die_after_one)
    with pytest.raises(KeyboardInterrupt):
        out.publish()
    monkeypatch.setattr(os, "replace", real)
    out._lock.release()  # the dead process's lock goes with it
    assert not (dest / "summary.json").exists()
    owned, foreign = io.owned_files(dest)
    assert foreign == [] and {p.name for p in owned} >= {"config.yaml", "samples.npz"}
    with pytest.raises(UserError, match="incomplete output set"):
        OutputSet(dest).check()
    publish(dest, overwrite=True)
    assert sorted(p.name for p in dest.iterdir()) == [MANIFEST, "samples.npz", "summary.json"]


def test_old_sets_without_a_manifest(tmp_path):
    """A set of a version that wrote no manifest is recognised only when complete and
    made of the writer's file names alone; anything less is never deleted."""
    old = tmp_path / "old"
    old.mkdir()
    for name in ("samples.npz", "samples.nc", "summary.json", "config.yaml", "trace.png"):
        (old / name).write_text("x")
    with pytest.raises(UserError, match="previous run"):
        OutputSet(old).check()
    publish(old, overwrite=True)
    assert sorted(p.name for p in old.iterdir()) == [MANIFEST, "samples.npz", "summary.json"]

    partial = tmp_path / "partial"  # no summary.json: could be anyone's files
    partial.mkdir()
    for name in ("samples.npz", "config.yaml"):
        (partial / name).write_text("x")
    with pytest.raises(UserError, match="not part of a sample output set"):
        OutputSet(partial, overwrite=True).check()
    assert sorted(p.name for p in partial.iterdir()) == ["config.yaml", "samples.npz"]

    theirs = tmp_path / "theirs"  # someone else's manifest.json is not ours
    theirs.mkdir()
    (theirs / MANIFEST).write_text(json.dumps({"files": {}}))
    with pytest.raises(UserError, match=MANIFEST):
        OutputSet(theirs, overwrite=True).check()


# ------------------------------------------------------------------ the lock
HOLDER = textwrap.dedent(
    """
    import importlib.util, os, sys, time
    sys.modules["lightning_ex2"] = None  # runlock.py alone: no torch to import
    spec = importlib.util.spec_from_file_location("runlock", sys.argv[1])
    runlock = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runlock)
    lock = runlock.RunLock(sys.argv[2]).acquire()
    if len(sys.argv) > 3:  # a staging folder named with the PID its namespace gave it
        staging = os.path.join(sys.argv[2], ".lightning-ex2-staging-" + sys.argv[3] + "-x")
        os.makedirs(staging)
        open(os.path.join(staging, "samples.npz"), "w").write("draws so far")
    print("held", os.getpid(), flush=True)
    time.sleep(120)
    """
)


def _namespace_prefix() -> list[str]:
    """``unshare`` into a new PID (and user) namespace when this machine allows it: the
    holder then runs as another container's process would (its PID means nothing here)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return []
    probe = [unshare, "-Ur", "--pid", "--fork", "true"]
    try:
        ok = subprocess.run(probe, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return probe[:-1] if ok else []


def _dead_pid() -> int:
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid += 1


@pytest.fixture
def holder():
    """Start a real process that holds the lock of a folder; killed (group) at the end."""
    procs: list[subprocess.Popen] = []

    def start(folder: Path, staging_pid: int | None = None, namespace: bool = False):
        cmd = [sys.executable, "-c", HOLDER, str(RUNLOCK), str(folder)]
        if staging_pid is not None:
            cmd.append(str(staging_pid))
        prefix = _namespace_prefix() if namespace else []
        proc = subprocess.Popen(
            prefix + cmd, stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        procs.append(proc)
        assert proc.stdout.readline().startswith("held"), "the holder did not start"
        return proc

    yield start
    for proc in procs:
        kill_group(proc)


def test_a_live_holder_is_refused_in_one_line_and_a_dead_ones_lock_taken_over(tmp_path, holder):
    folder = tmp_path / "run"
    proc = holder(folder)
    with pytest.raises(LockHeld) as info:
        RunLock(folder, what="the log folder").acquire()
    message = str(info.value)
    assert "\n" not in message and isinstance(info.value, UserError)
    assert f"host {socket.gethostname()}" in message and "since 20" in message
    assert "pid" in message and str(folder) in message
    kill_group(proc)  # SIGKILL: the kernel releases its flock
    with RunLock(folder) as lock:
        assert lock.previous is not None  # the dead holder's record, taken over
        recorded = json.loads((folder / LOCK_NAME).read_text())
        assert recorded["pid"] == os.getpid()
    assert not (folder / LOCK_NAME).exists()


def test_two_publishes_into_one_folder_cannot_interleave(tmp_path):
    """The forced interleaving (A's summary.json beside B's samples.npz) cannot happen:
    while A holds the folder, B is refused before it stages anything."""
    dest = tmp_path / "out"
    a = OutputSet(dest)
    staging = staged_set(a)
    with pytest.raises(LockHeld, match=f"pid {os.getpid()}"):
        OutputSet(dest, overwrite=True).begin()
    assert staging.is_dir()
    a.publish()
    publish(dest, overwrite=True, **{"config.yaml": "B"})  # once A is done, B runs
    assert (dest / "config.yaml").read_text() == "B"


def test_sample_into_a_folder_another_process_holds_is_refused_before_any_step(
    tmp_path, main, capsys, monkeypatch, holder
):
    cfg = write_config(tmp_path)
    out = tmp_path / "out"
    proc = holder(out)
    args = ("sample", "--config", cfg, "--n_steps", 4, "--output_dir", out, "--progress", "false")
    with monkeypatch.context() as m:
        no_sampling(m)
        assert main(*args, "--overwrite", "true") == 2
    one_line_error(capsys, str(out), "in use by a live run", f"pid {proc.pid}", "since")
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # the holder's, untouched
    kill_group(proc)
    taken = OutputSet(out)
    taken.lock()  # the dead holder's lock is taken over
    taken.unlock()
    assert list(out.iterdir()) == []  # the dead holder's lock file is gone too


@pytest.mark.parametrize("namespace", [True, False], ids=["unshare", "plain"])
def test_a_live_runs_staging_folder_is_never_deleted_whatever_its_pid(tmp_path, holder, namespace):
    """A run in another PID namespace (another container on the volume) names its
    staging folder with a PID that is dead here: while it holds the lock nothing of it
    is touched; once it is dead, its staging folder goes (under the lock)."""
    dest = tmp_path / "out"
    dead_here = _dead_pid()
    proc = holder(dest, staging_pid=dead_here, namespace=namespace)
    staging = dest / f".lightning-ex2-staging-{dead_here}-x"
    with pytest.raises(LockHeld):
        OutputSet(dest, overwrite=True).begin()
    assert (staging / "samples.npz").read_text() == "draws so far"
    kill_group(proc)
    publish(dest)
    assert not staging.exists()
    assert sorted(p.name for p in dest.iterdir()) == [MANIFEST, "samples.npz", "summary.json"]


def test_a_second_fit_while_the_first_runs_is_refused(tmp_path, main, capsys, monkeypatch, holder):
    """The issue's case: the first fit is alive and has written only its config.yaml
    (no checkpoint yet); the same command again is not a restart: it is refused, and
    the first run's files stay. Once the first is dead, the same command restarts it."""
    from lightning_ex2.lightning.guard import RunGuard

    cfg = write_config(tmp_path)
    run_dir = tmp_path / "logs" / "run" / "fit"

    def killed(*args, **kwargs):
        raise RuntimeError("killed before its first checkpoint")

    with monkeypatch.context() as m:  # the first run's files, as a live run has them
        m.setattr(RunGuard, "on_train_start", killed)
        with pytest.raises(RuntimeError, match="killed"):
            main("fit", "--config", cfg)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    assert "config.yaml" in before and not (run_dir / "checkpoints").exists()
    proc = holder(run_dir)
    assert main("fit", "--config", cfg) == 2
    one_line_error(capsys, str(run_dir), "in use by a live run", f"pid {proc.pid}")
    after = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    assert {k: v for k, v in after.items() if k != LOCK_NAME} == before
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert main("fit", "--config", cfg, "--trainer.max_steps", 8) == 0  # the restart
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert not (run_dir / LOCK_NAME).exists()


def test_a_run_that_wrote_nothing_leaves_no_folder(tmp_path):
    """The lock creates the folder (and missing parents) it guards; released with
    nothing written there, they go again."""
    out = OutputSet(tmp_path / "a" / "b" / "out")
    out.lock()
    assert (tmp_path / "a" / "b" / "out" / LOCK_NAME).is_file()
    out.unlock()
    assert list(tmp_path.iterdir()) == []
