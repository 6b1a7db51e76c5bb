"""User-facing text speaks of the product, not of how the project was made.

README.md, the docs pages, the notebooks' Markdown cells and benchmarks/RESULTS.md must not
mention issues, merges, branches, "main" as a git branch, sessions, other engineers, other
jobs on the machine, sections carried over or superseded. A date and the command that made
a number are the way to say when and how. Code (fenced blocks, inline code spans) is not
prose and is not checked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
FILES = sorted(
    [
        ROOT / "README.md",
        ROOT / "benchmarks" / "RESULTS.md",
        *(ROOT / "docs").rglob("*.md"),
        *(ROOT / "docs").glob("*.ipynb"),
    ]
)
HISTORY = re.compile(
    r"""
    \bissues?\b                                   # issue 18, the tuning issue
    | (?:^|[\s(])\#\d+(?![\w-])                   # #18 as an issue reference (not #18-steps)
    | \bmerg(?:e|ed|es|ing)\b                     # after the merge
    | \bbranch(?:es)?\b                           # the GAN branch
    | \b(?:final|previous|merged|on|of)\s+main\b  # on the final main
    | \bmain's\b
    | \b(?:other\s+)?engineers?\b                 # three other engineers' jobs
    | \banother\s+job\b | \bother\s+jobs'         # with another job on the other core
    | \bsessions?\b
    | \bcarried[\s-]+over\b
    | \bsupersed
    | \bhelpers?\b
    | \b(?:this|previous|last)\s+round\b | \bround\s+before\b
    | \bprevious\s+README\b
    """,
    re.I | re.X | re.M,
)
FENCE = re.compile(r"^\s*```.*?^\s*```", re.S | re.M)
CODE = re.compile(r"`[^`\n]*`")


def _blank(match: re.Match) -> str:
    return "\n" * match.group(0).count("\n")  # keep the line numbers of the hits


def prose(path: Path) -> str:
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        text = "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    else:
        text = path.read_text(encoding="utf-8")
    return CODE.sub("`code`", FENCE.sub(_blank, text))


def history(text: str) -> list[str]:
    """``line: words`` for each mention of the project's history in ``text``."""
    hits = []
    for m in HISTORY.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        start = text.rfind("\n", 0, m.start()) + 1
        context = text[max(start, m.start() - 40) : m.end() + 40].split("\n", 1)[0]
        hits.append(f"{line}: {m.group(0).strip()!r} in {context.strip()!r}")
    return hits


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_user_facing_text_speaks_of_the_product(path: Path) -> None:
    name = path.relative_to(ROOT).as_posix()
    hits = history(prose(path))
    assert not hits, f"{name} mentions the project's history:\n" + "\n".join(hits)


def test_the_check_finds_each_kind_of_history() -> None:
    cases = [
        "rerun on the final main, after issue 18's merge",
        "with three other engineers' jobs",
        "made on the GAN branch",
        "see #18",
        "fixed in (#18)",
        "These tables supersede the tables below",
        "carried over from that run",
        "with another job on the other core",
        "the previous main measured 1.15×",
        "in another session",
        "a helper regenerates it",
        "the round before this one measured",
    ]
    for text in cases:
        assert history(text), text
    fine = "On a machine shared with other jobs, ask for one thread; `cli.py`: `main` parses; see [x](#18-steps)"
    assert history(prose_of(fine)) == []
    assert history(prose_of("text `issue 18` in code\n```\nmerged\n```\n")) == []
    assert history("A table\n\nthe GAN branch") == ["3: 'branch' in 'the GAN branch'"]


def prose_of(text: str) -> str:
    return CODE.sub("`code`", FENCE.sub(_blank, text))
