"""scripts/fashion_table.py end to end at toy scale (16 chains, budget 30, 3 methods, 1 seed).

It runs the documented ``fit``/``sample`` commands as subprocesses on synthetic Fashion-MNIST
files (the shipped GAN and calibrated discriminator, the shipped classifier), so a change that
breaks the script (output folders, imports, summary keys) fails here, not in a user's hands.
About 2 minutes on 2 busy cores.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.test_fashion import synthetic, table, write_idx  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[1]


def test_table_script_end_to_end_toy_scale(table, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    data = tmp_path / "fashion"
    data.mkdir()
    write_idx(data, "train", *synthetic(96))
    write_idx(data, "t10k", *synthetic(100, seed=1))
    out, figures = tmp_path / "out", tmp_path / "figures"
    start, end = table.markers("fashion_calibrated")
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{start}\nold\n{end}\ntail\n")
    # what a failed earlier run leaves behind: the script must remove its own previous runs
    (out / "mala" / "seed0").mkdir(parents=True)
    (out / "mala" / "seed0" / "fit.log").write_text("stale")
    (out / "fits" / "fashion_calibrated_mala" / "seed0").mkdir(parents=True)
    (out / "fits" / "fashion_calibrated_mala" / "seed0" / "config.yaml").write_text("stale")
    argv = [
        "--prefix", "fashion_calibrated", "--methods", "mala", "isir", "ex2mcmc",
        "--seeds", "0", "--n_chains", "16", "--budget", "30", "--out", str(out),
        "--figures", str(figures), "--readme", str(readme), "--data_dir", str(data),
        "--n_real", "100", "--diagnostics_n", "200",
    ]  # fmt: skip
    assert table.main(argv) == 0
    text = readme.read_text()
    assert "old" not in text and text.endswith(f"{end}\ntail\n")
    for label in ("plain generator", "MALA (adapted)", "i-SIR", "Ex2MCMC", "tilt std"):
        assert label in text
    for method in ("mala", "isir", "ex2mcmc"):
        run = out / method / "seed0"
        assert not [p for p in run.iterdir() if p.suffix == ".log"]  # logs live beside it
        assert (out / method / "logs" / "seed0.sample.log").is_file()
        summary = json.loads((run / "summary.json").read_text())
        assert np.isfinite(summary["image_metrics"]["fid"])
        diag = summary["target_diagnostics"]
        assert 0 < diag["importance_ess_fraction"] <= 1 and diag["tilt_std"] > 0
        assert (figures / f"{method}.png").is_file()
    curves = json.loads((out / "curves.json").read_text())["curves"]
    assert set(curves) == {"mala", "isir", "ex2mcmc"}
    mala = curves["mala"][0]
    assert mala["evals"][-1] == 30 and len(mala["fid"]) == len(mala["evals"]) > 1
    assert (figures / "fid_curves.png").is_file()
    assert json.loads((out / "target_diagnostics.json").read_text())["n"] == 200
