"""``make gpu-check`` (benchmarks/gpu_check.py): the no-CUDA stop, and its code on the CPU."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


def test_without_cuda_it_stops_at_once_with_one_line():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # hides any GPU from torch
    p = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, env=env, timeout=120
    )
    out = (p.stdout + p.stderr).strip()
    assert p.returncode == 2
    assert len(out.splitlines()) == 1, out
    assert "no CUDA device" in out and "Traceback" not in out


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_throughput_table_on_cpu_smoke(tmp_path):
    """The throughput code path (kernels on the GAN target, floors, table, JSON) on small nets."""
    rc = _module().main(
        [
            "--device=cpu", "--parts=throughput", "--small", "--chains=2", "--particles=3",
            "--kernels=i-SIR,Ex2MCMC", "--min-seconds=0.01", f"--out={tmp_path}",
        ]
    )  # fmt: skip
    assert rc == 0
    report = json.loads((tmp_path / "gpu.json").read_text())
    assert report["ok"] is True and report["device"] == "cpu"
    rows = report["throughput"]
    assert [(r["kernel"], r["chains"]) for r in rows] == [("i-SIR", 2), ("Ex2MCMC", 2)]
    for r in rows:
        assert r["chain-steps/s"] > 0 and r["net ratio"] > 0 and r["host syncs/step"] == 0
    md = (tmp_path / "gpu.md").read_text()
    assert "| kernel | chains |" in md and "| Ex2MCMC | 2 |" in md


def test_bad_parts_and_kernels_are_named(tmp_path, capsys):
    mod = _module()
    assert mod.main(["--device=cpu", "--parts=tests,bogus", f"--out={tmp_path}"]) == 2
    assert "bogus" in capsys.readouterr().err
    args = ["--device=cpu", "--parts=throughput", "--kernels=HMC", f"--out={tmp_path}"]
    assert mod.main(args) == 2
    assert "--kernels" in capsys.readouterr().err
