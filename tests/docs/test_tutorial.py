"""The tutorial notebook (docs/tutorial.ipynb) runs end to end at its small size.

``LX2_TUTORIAL_SMALL=1`` shrinks the notebook's sizes (chains, steps, GAN epochs) and
``LX2_TUTORIAL_OUT`` sends its outputs to a temporary folder; the stored outputs that the
docs site shows come from a run at the full sizes. About two minutes on 2 busy cores.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the docs extra: pip install -e '.[docs]'")
nbclient = pytest.importorskip("nbclient", reason="the docs extra: pip install -e '.[docs]'")

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
NOTEBOOK = ROOT / "docs" / "tutorial.ipynb"


def test_tutorial_notebook_executes_at_small_size(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LX2_TUTORIAL_SMALL", "1")
    monkeypatch.setenv("LX2_TUTORIAL_OUT", str(tmp_path))
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    pythonpath = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + (os.pathsep + pythonpath if pythonpath else ""))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "docs")}}
    )
    client.execute()  # raises CellExecutionError naming the cell on any error
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors
    quick = json.loads((tmp_path / "quickstart" / "sample" / "summary.json").read_text())
    assert quick["complete"] is True and quick["n_chains"] == 16 and quick["n_draws"] == 20
    assert (tmp_path / "quickstart" / "sample" / "samples.nc").is_file()
    gan = json.loads((tmp_path / "gan" / "digits_ex2mcmc" / "sample" / "summary.json").read_text())
    assert gan["complete"] is True and math.isfinite(gan["image_metrics"]["fid"])
    figures = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "image/png" in o.get("data", {})
    ]
    assert len(figures) == 2  # the draws/trace figure and the GAN image grids


def test_stored_notebook_is_the_full_size_run() -> None:
    """The site renders the stored outputs (mkdocs-jupyter, execute: false): they must be
    there, without errors, and from a run at the full sizes (not the test's small one)."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), "run the notebook before committing"
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "--trainer.max_steps 300 --data.n_chains 100" in text
