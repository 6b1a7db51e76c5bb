"""Toy-scale runs of the posteriordb scripts on the shipped fixture (no PyStan needed).

``scripts/posteriordb_suite.py`` runs as documented (two posteriors, two library
kernels, two seeds, a few steps; NUTS needs PyStan and is left out) and writes its
marked block with the standard footer into a temporary page;
``scripts/posteriordb_stan_check.py --recorded`` compares the shipped ports with their
Stan records. The numbers are not checked here (the scale is far too small to be right).
"""

from __future__ import annotations

import importlib.util
import json

from tests.scripts.test_table_scripts import ROOT, _check_block, _page, _run

FIXTURE = ROOT / "tests" / "fixtures" / "posteriordb"


def test_posteriordb_suite_toy(tmp_path):
    page = _page(tmp_path, "posteriors-table")
    _run(
        [
            str(ROOT / "scripts" / "posteriordb_suite.py"),
            "--posteriordb",
            str(FIXTURE),
            "--names",
            "garch-garch11,eight_schools-eight_schools_noncentered",
            "--kernels",
            "mala,hmc,flex2mcmc",
            "--chains",
            "4",
            "--warmup",
            "10",
            "--steps",
            "10",
            "--n-leapfrog",
            "3",
            "--seeds",
            "0,1",
            "--out",
            str(tmp_path / "out"),
            "--write",
            str(page),
        ],
        cwd=tmp_path,
        timeout=600,
    )
    rows = [f"| {n} | {k} |" for n in ("garch-garch11", "eight_schools-eight_schools_noncentered")
            for k in ("mala", "hmc", "flex2mcmc")]  # fmt: skip
    _check_block(page, "posteriors-table", "scripts/posteriordb_suite.py", rows)
    per_seed = json.loads((tmp_path / "out" / "posteriors.json").read_text())
    runs = per_seed["runs"]["garch-garch11"]["mala"]
    assert [r["seed"] for r in runs] == [0, 1]
    assert all(r["ess_per_grad"] > 0 and r["seconds"] > 0 for r in runs)


def test_posteriordb_suite_pyro_toy(tmp_path):
    """``--pyro``: the Pyro models sample (the library's HMC, and Pyro's own NUTS in two
    spawned processes), the ports score; posteriors without a Pyro model (garch) are
    left out; the block goes where ``--block`` says."""
    page = _page(tmp_path, "posteriors-pyro")
    _run(
        [
            str(ROOT / "scripts" / "posteriordb_suite.py"), "--posteriordb", str(FIXTURE),
            "--names", "garch-garch11,eight_schools-eight_schools_noncentered",
            "--kernels", "hmc,pyro_nuts", "--chains", "4", "--warmup", "10", "--steps", "10",
            "--n-leapfrog", "3", "--seeds", "0,1", "--pyro", "--block", "posteriors-pyro",
            "--nuts-chains", "2", "--nuts-warmup", "10", "--nuts-draws", "10",
            "--out", str(tmp_path / "out"), "--write", str(page),
        ],
        cwd=tmp_path,
        timeout=600,
    )  # fmt: skip
    block = _check_block(
        page, "posteriors-pyro", "scripts/posteriordb_suite.py",
        ["| eight_schools-eight_schools_noncentered | hmc |",
         "| eight_schools-eight_schools_noncentered | pyro_nuts |"],
    )  # fmt: skip
    assert "| garch-garch11 |" not in block and "Pyro models (PyroModel)" in block
    assert "pyro_nuts: Pyro's NUTS, 2 chains in parallel" in block
    runs = json.loads((tmp_path / "out" / "posteriors.json").read_text())["runs"]
    assert list(runs) == ["eight_schools-eight_schools_noncentered"]
    by_kernel = runs["eight_schools-eight_schools_noncentered"]
    assert all(r["mean_err"] >= 0 for r in by_kernel["hmc"])
    nuts = by_kernel["pyro_nuts"]
    assert [r["seed"] for r in nuts] == [0, 1]  # 2 chains x 10 draws each, scored
    assert all(r["ess_per_grad"] is None and r["seconds"] > 0 for r in nuts)


def test_posteriordb_stan_check_recorded(capsys):
    spec = importlib.util.spec_from_file_location(
        "posteriordb_stan_check", ROOT / "scripts" / "posteriordb_stan_check.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    argv = ["--posteriordb", str(FIXTURE), "--names", "garch-garch11", "--recorded"]
    assert script.main(argv) == 0
    assert "garch-garch11" in capsys.readouterr().out
    # a port that differs from its record fails the script
    assert script.main([*argv, "--tol", "0"]) == 1
