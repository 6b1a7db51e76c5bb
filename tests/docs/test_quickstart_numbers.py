"""The README's quick-start numbers hold: ``make demo``'s commands, run as written, land in them.

The Makefile's ``demo`` recipe (``fit`` then ``sample`` on ``configs/quickstart.yaml``, 300 +
300 steps, 100 chains) runs here at its documented size, at one thread, in a temporary
folder; its ``summary.json`` must fall in every range of the README's
``quickstart-summary`` block. The ranges are parsed from the README itself and the commands
from the Makefile, so neither can drift from what this test checks. The ranges cover the
spread over seeds and CPUs, widened by the Monte Carlo error, so they hold on any x86-64
machine. About a minute at one thread on a free core (marked ``slow``; ``make test`` runs
it).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCK = "quickstart-summary"


def readme_ranges(text: str) -> dict[str, tuple[float, float] | bool | int]:
    """``{key: (lo, hi) | True/False | exact int}`` from the README's quickstart-summary table.

    A row reads ``| `key` | range | ... |`` with range ``a to b``, ``≥ a``, ``≤ b``,
    ``true``/``false`` or an integer.
    """
    start, end = f"<!-- {BLOCK}:start -->", f"<!-- {BLOCK}:end -->"
    assert start in text and end in text, f"README.md has no {BLOCK} block"
    block = text.split(start)[1].split(end)[0]
    ranges: dict[str, tuple[float, float] | bool | int] = {}
    for line in block.splitlines():
        m = re.match(r"\|\s*`(\w+)`\s*\|\s*([^|]+?)\s*\|", line)
        if not m:
            continue
        key, spec = m.groups()
        spec = spec.replace("\u2009", " ").replace(" ", "")
        if m2 := re.fullmatch(r"([\d.]+)to([\d.]+)", spec):
            ranges[key] = (float(m2[1]), float(m2[2]))
        elif m2 := re.fullmatch(r"≥([\d.]+)", spec):
            ranges[key] = (float(m2[1]), float("inf"))
        elif m2 := re.fullmatch(r"≤([\d.]+)", spec):
            ranges[key] = (float("-inf"), float(m2[1]))
        elif spec in ("true", "false"):
            ranges[key] = spec == "true"
        elif spec.isdigit():
            ranges[key] = int(spec)
        else:
            raise AssertionError(f"unparsed range for {key}: {spec!r}")
    return ranges


def demo_commands(makefile: str) -> list[list[str]]:
    """The ``lightning-ex2`` command lines of the Makefile's ``demo`` recipe, variables expanded."""
    recipe = makefile.split("\ndemo:")[1].split("\n\n")[0]
    recipe = recipe.replace("\\\n", " ")
    quickstart = re.search(r"^QUICKSTART\s*:=\s*(\S+)", makefile, re.M)
    assert quickstart, "Makefile: no QUICKSTART"
    exe = str(Path(sys.executable).with_name("lightning-ex2"))
    commands = []
    for line in recipe.splitlines():
        line = line.strip()
        if line.startswith("$(BIN)/lightning-ex2"):
            line = line.replace("$(QUICKSTART)", quickstart[1])
            commands.append([exe, *shlex.split(line)[1:]])
    return commands


def test_readme_ranges_parse():
    ranges = readme_ranges((ROOT / "README.md").read_text())
    for key in ("emd", "ess_bulk_min", "ess_tail_min", "rhat_max", "converged"):
        assert key in ranges, ranges
    assert ranges["converged"] is True
    text = "<!-- quickstart-summary:start -->\n| `emd` | 0.2 to 0.9 |\n| `x` | ≥ 5 |\n"
    assert readme_ranges(text + "<!-- quickstart-summary:end -->") == {
        "emd": (0.2, 0.9),
        "x": (5.0, float("inf")),
    }


def test_demo_commands_are_fit_then_sample_of_the_quickstart_config():
    commands = demo_commands((ROOT / "Makefile").read_text())
    assert [c[1] for c in commands] == ["fit", "sample"]
    assert all("configs/quickstart.yaml" in c for c in commands)
    assert commands[1][commands[1].index("--n_steps") + 1] == "300"


def outside(summary: dict, ranges: dict) -> dict:
    """The keys of ``summary`` that miss their README range: ``{key: (value, range)}``."""
    missed = {}
    for key, want in ranges.items():
        got = summary[key]
        ok = want[0] <= got <= want[1] if isinstance(want, tuple) else got == want
        if not ok:
            missed[key] = (got, want)
    return missed


def test_outside_names_every_miss():
    ranges = {"emd": (0.25, 1.6), "rhat_max": (float("-inf"), 1.01), "converged": True}
    assert outside({"emd": 0.5, "rhat_max": 1.0, "converged": True}, ranges) == {}
    assert set(outside({"emd": 2.0, "rhat_max": 1.2, "converged": False}, ranges)) == set(ranges)


@pytest.mark.slow
def test_make_demo_lands_in_the_readme_ranges(tmp_path):
    ranges = readme_ranges((ROOT / "README.md").read_text())
    commands = demo_commands((ROOT / "Makefile").read_text())
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    for cmd in commands:
        proc = subprocess.run(
            [*cmd, "--trainer.enable_progress_bar", "false"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=3600,
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = commands[1][commands[1].index("--output_dir") + 1]
    summary = json.loads((tmp_path / out / "summary.json").read_text())
    missed = outside(summary, ranges)
    assert not missed, f"summary.json outside the README's ranges: {missed}"


def test_getting_started_shows_the_readme_s_ranges():
    """The docs' Getting started page carries the same table as the README, word for word."""
    start, end = f"<!-- {BLOCK}:start -->", f"<!-- {BLOCK}:end -->"
    readme = (ROOT / "README.md").read_text()
    page = (ROOT / "docs" / "getting-started.md").read_text()
    assert start in page and end in page, "docs/getting-started.md has no quick-start table"
    cut = lambda t: t[t.index(start) : t.index(end)]  # noqa: E731
    assert cut(page) == cut(readme)
