"""The documentation's Python examples run as printed, and those that sample converge.

Every ```` ```python ```` block of ``README.md`` and ``docs/**/*.md`` runs verbatim, at its
documented size, with a failed convergence verdict or any other ``RuntimeWarning`` as an
error (the headline example of ``docs/python-api.md`` takes about 15 s of one core). The
docstring examples of the package that call ``sample`` run the same way (the suite's
``--doctest-modules`` runs them too, but there a warning is not a failure).
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
import warnings
from pathlib import Path

import pytest

import lightning_ex2

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.M | re.S)


def python_blocks() -> list[tuple[str, str]]:
    """``(page:line, code)`` of every ```` ```python ```` block of the pages."""
    out = []
    for page in PAGES:
        text = page.read_text()
        for m in FENCE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            out.append((f"{page.relative_to(ROOT)}:{line}", m.group(1)))
    return out


BLOCKS = python_blocks()


def test_the_pages_have_python_examples() -> None:
    where = {w.split(":")[0] for w, _ in BLOCKS}
    assert {"docs/python-api.md", "docs/cli.md"} <= where


@pytest.mark.parametrize("code", [c for _, c in BLOCKS], ids=[w for w, _ in BLOCKS])
def test_python_block_runs_as_printed(code: str) -> None:
    namespace: dict = {"__name__": "__docs_example__"}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        exec(compile(code, "<docs example>", "exec"), namespace)
    run = namespace.get("run")
    if run is not None:  # an example that samples: its verdict, not only its silence
        assert run.summary()["converged"] is True


def _sampling_doctests() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder()
    found = []
    names = [m.name for m in pkgutil.walk_packages(lightning_ex2.__path__, "lightning_ex2.")]
    for name in ["lightning_ex2", *names]:
        module = importlib.import_module(name)
        for test in finder.find(module, module=module):
            if any("sample(" in ex.source and "lx." in ex.source for ex in test.examples):
                found.append(test)
    return found


DOCTESTS = _sampling_doctests()


def test_sampling_docstring_examples_are_found() -> None:
    names = {t.name for t in DOCTESTS}
    assert {"lightning_ex2", "lightning_ex2.sampling"} <= names


@pytest.mark.parametrize("test", DOCTESTS, ids=[t.name for t in DOCTESTS])
def test_sampling_docstring_example_converges(test: doctest.DocTest) -> None:
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    failures: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        runner.run(test, out=failures.append)
    assert runner.failures == 0, "".join(failures)
