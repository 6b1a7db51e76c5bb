"""``import lightning_ex2 as lx`` reaches every submodule the documentation names
(``lx.output.load_output_set``, ``lx.targets``, ...), each checked in a fresh interpreter: no earlier
import in the test process may have loaded it first."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
#: ``lx.<submodule>.<name>`` or ``lightning_ex2.<submodule>.<name>`` in the docs' text
DOTTED = re.compile(r"\b(?:lx|lightning_ex2)\.([a-z_]+)\.([A-Za-z_][A-Za-z0-9_]*)")
#: names the docs quote as mistakes (docs/cli.md: a misspelled class path and a path of an
#: earlier layout, with their messages) or as a record of what a past run used
#: (docs/gans.md: the feature network's class path stamped into a Fashion table)
MISTAKES = {("kernels", "Ex2MCMCC"), ("gan", "fashion")}
#: the class paths of the earlier layout that docs/cli.md maps to the present ones
EARLIER = {
    ("modules", "MCMCSampler"), ("modules", "GANModule"), ("data", "ChainDataModule"),
    ("callbacks", "ChainDiagnostics"), ("callbacks", "ImageQualityMetrics"),
    ("metrics", "ClassifierFeatures"), ("targets", "GANLatentTarget"),
    ("targets", "gan_diagnostics"),
}  # fmt: skip


def documented() -> dict[str, list[str]]:
    """``{submodule: [names]}`` of every dotted path the README and docs name."""
    found: dict[str, set[str]] = defaultdict(set)
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for sub, name in DOTTED.findall(page.read_text()):
            if (sub, name) not in MISTAKES | EARLIER:
                found[sub].add(name)
    return {sub: sorted(names) for sub, names in sorted(found.items())}


DOCUMENTED = documented()


def test_the_docs_name_submodules() -> None:
    assert {"output", "kernels", "targets", "diagnostics", "lightning", "gan"} <= set(DOCUMENTED)
    assert not {"io", "metrics", "callbacks", "modules", "networks"} & set(DOCUMENTED)  # old layout
    assert "GANLatentTarget" in DOCUMENTED["gan"]


@pytest.mark.parametrize("sub", list(DOCUMENTED))
def test_documented_submodule_is_reachable_after_import(sub: str) -> None:
    names = DOCUMENTED[sub]
    code = f"import lightning_ex2 as lx\nfor name in {names!r}:\n    getattr(lx.{sub}, name)\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_import_stays_light_and_unknown_names_fail() -> None:
    code = (
        "import sys, lightning_ex2 as lx\n"
        "assert 'lightning_ex2.lightning' not in sys.modules and 'pytorch_lightning' not in sys.modules\n"
        "assert 'lightning_ex2.gan' not in sys.modules\n"
        "assert {'output', 'gan', 'lightning', 'diagnostics'} <= set(dir(lx))\n"
        "try:\n    lx.no_such_thing\nexcept AttributeError as e:\n    print(e)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "has no attribute 'no_such_thing'" in proc.stdout
