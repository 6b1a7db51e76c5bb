"""scripts/fashion_table.py end to end at toy scale (16 chains, budget 30, 3 methods, 1 seed).

It runs the documented ``fit``/``sample`` commands as subprocesses on synthetic Fashion-MNIST
files (the shipped GAN and calibrated discriminator, the shipped classifier), so a change that
breaks the script (output folders, imports, summary keys) fails here, not in a user's hands.
About 2 minutes on 2 busy cores.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from lightning_ex2.gan.fashion import FashionGenerator
from tests.fashion_data import synthetic, write_idx

ROOT = Path(__file__).resolve().parents[2]


def test_table_script_end_to_end_toy_scale(table, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
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


# ----------------------------------------------------------------------------- table script
@pytest.fixture
def table():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "fashion_table", ROOT / "scripts/fashion_table.py"
    )
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["fashion_table"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    yield module
    sys.modules.pop("fashion_table", None)


def test_table_plan_spends_equal_budget(table) -> None:  # type: ignore[no-untyped-def]
    for method in table.METHODS:
        fit, sample, evals = table.plan(method, 130, 0.2)
        assert fit >= 1 and sample >= 1
        assert 130 - table.COST[method] < evals <= 130
    with pytest.raises(ValueError, match="unknown method"):
        table.plan("hmc", 100, 0.2)


def test_table_render_and_readme_section(table, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows = [table.Row("none", fid=[10.0, 14.0], inception_score=[3.0, 3.0], wall=[0.0, 0.0])]
    rows.append(
        table.Row(
            "ex2mcmc", 2, 8, 130, [8.0, 9.0], [3.5, 3.7], [20.0, 22.0],
            [{"accept_global_mean": 0.5, "energy_start": 3.0, "energy_end": 1.0}] * 2,
        )
    )  # fmt: skip
    text = table.render_table(rows, [0, 1])
    assert "| plain generator | – | 0 | 12.00 ± 2.00 | 3.00 ± 0.00 |" in text
    assert "| Ex2MCMC | 2 + 8 | 130 | 8.50 ± 0.50 | 3.60 ± 0.10 | 21 ± 1 | – | 0.50 / – |" in text
    readme = f"# x\n{table.START}\nold\n{table.END}\ntail\n"
    new = table.replace_section(readme, text)
    assert "old" not in new and text in new and new.endswith(f"{table.END}\ntail\n")
    with pytest.raises(ValueError, match="markers"):
        table.replace_section("no markers", text)


def test_table_trajectory_png(table, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    g = FashionGenerator(latent_dim=4, ngf=4).eval()
    samples = np.random.default_rng(0).normal(size=(10, 12, 4)).astype(np.float32)
    path = table.trajectory_png(samples, g, tmp_path / "t.png", n_rows=3, n_cols=5)
    with Image.open(path) as img:
        # 3 rows x 5 columns of 28-pixel cells, 1-pixel padding, doubled
        assert img.size == (2 * (5 * 29 + 1), 2 * (3 * 29 + 1))
    with pytest.raises(ValueError, match="chains, draws, dim"):
        table.trajectory_png(samples[0], g, tmp_path / "u.png")
    e0, e1 = table.energy_curve(np.array([[-1.0, -3.0], [-3.0, -5.0]]))
    assert (e0, e1) == (2.0, 4.0)
    # log pi = log N(z; 0, I) + d: the logit curve recovers d
    z = np.random.default_rng(1).normal(size=(4, 2, 3))
    log_normal = -0.5 * (z**2).sum(-1) - 1.5 * np.log(2 * np.pi)
    d0, d1 = table.logit_curve(log_normal + np.array([0.5, -1.0]), z)
    assert np.isclose(d0, 0.5) and np.isclose(d1, -1.0)
