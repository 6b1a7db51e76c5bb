"""Toy-scale end-to-end runs of the scripts whose output the README quotes.

Each script runs exactly as documented, on a copy of ``scripts/`` and ``configs/`` in a
temporary folder (the scripts resolve paths from their own location), so a run here never
touches the repository's ``logs/``. Scale: seconds to a minute each; the numbers are not
checked, only that every table is made from real runs (the full-scale commands are in the
README beside each table). ``scripts/fashion_table.py`` has its own test
(``tests/scripts/test_fashion_table.py``), ``benchmarks/rematch.py`` too (``tests/scripts/test_rematch.py``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _copy(tmp_path: Path, script: str) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / script, tmp_path / "scripts" / script)
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    return tmp_path / "scripts" / script


def _run(args: list[str], cwd: Path, timeout: int = 600) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_synthetic_table_toy(tmp_path):
    script = _copy(tmp_path, "synthetic_table.py")
    out = _run(
        [
            str(script),
            "--experiment",
            "mixture25",
            "--methods",
            "mala",
            "isir",
            "--fit-steps",
            "4",
            "--sample-steps",
            "8",
            "--out",
            str(tmp_path / "tables"),
        ],
        cwd=tmp_path,
    )
    rows = [
        line for line in out.splitlines() if line.startswith("| mala") or line.startswith("| isir")
    ]
    assert len(rows) == 2, out
    assert (tmp_path / "tables" / "mixture25" / "isir" / "summary.json").is_file()


def test_digits_table_toy(tmp_path):
    script = _copy(tmp_path, "digits_table.py")
    out = _run(
        [
            str(script),
            "--methods",
            "mala",
            "isir",
            "--budget",
            "18",
            "--warmup",
            "3",
            "--n_chains",
            "16",
            "--gan_steps",
            "20",
            "--out",
            str(tmp_path / "tables"),
        ],
        cwd=tmp_path,
    )
    for row in ("| none (generator) |", "| mala | 18 | 18 |", "| isir | 2 | 18 |"):
        assert row in out, out
    assert (tmp_path / "logs/gan/digits/generator.pt").is_file()


def test_compare_demo_toy(tmp_path):
    out = _run(
        [
            "-m",
            "lightning_ex2.demo",
            "--n-chains",
            "4",
            "--n-steps",
            "20",
            "--burn-in",
            "5",
            "--out",
            str(tmp_path / "demo"),
        ],
        cwd=tmp_path,
    )
    table = (tmp_path / "demo" / "kernels.md").read_text()
    for kernel in ("ULA", "MALA", "HMC", "i-SIR", "Ex2MCMC"):
        assert f"| {kernel} |" in table, table
    assert "| target | kernel |" in out


@pytest.mark.parametrize("script", ["synthetic_table.py", "digits_table.py", "fashion_table.py"])
def test_table_scripts_document_their_command(script):
    """Each script's docstring carries the command that runs it (the README quotes it)."""
    text = (ROOT / "scripts" / script).read_text()
    assert f"python scripts/{script}" in text
