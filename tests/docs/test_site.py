"""The README and the documentation pages: size, links, and the quick-start commands.

The site itself is built by ``make docs`` (``mkdocs build --strict``, part of
``make test``); these checks hold without the docs extra installed.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
# [text](target) and ![alt](target), not inside code spans/blocks
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
CODE = re.compile(r"`[^`\n]*`")


def relative_links(path: Path) -> list[str]:
    text = CODE.sub("", FENCE.sub("", path.read_text()))
    links = [m.group(1) for m in LINK.finditer(text)]
    return [u for u in links if not re.match(r"^[a-z][a-z0-9+.-]*:|^#|^/", u)]


def test_readme_fits_one_screen_budget() -> None:
    size = len(README.read_bytes())
    assert size <= 15 * 1024, f"README.md is {size} bytes; the budget is 15 KB (move text to docs/)"


@pytest.mark.parametrize("path", [README, *PAGES], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_names_a_file(path: Path) -> None:
    broken = []
    for url in relative_links(path):
        target = (path.parent / unquote(url.split("#", 1)[0])).resolve()
        if not target.exists():
            broken.append(url)
    assert not broken, f"{path.name}: links to missing files: {broken}"


def test_link_check_sees_links() -> None:
    """The check above cannot pass vacuously: it finds the README's page links and images."""
    assert "docs/cli.md" in relative_links(README)
    gans = relative_links(ROOT / "docs" / "gans.md")
    assert "fashion/gan_samples.png" in gans and "fashion/fashion/fid_curves.png" in gans
    assert relative_links(ROOT / "docs" / "gans.md") and not [
        u for u in gans if u.startswith("docs/")
    ]  # links in docs/ are relative to docs/


def quick_start_commands(text: str) -> list[str]:
    section = text[text.index("## Quick start") :]
    block = section[
        section.index("```bash") + 7 : section.index("```", section.index("```bash") + 7)
    ]
    return [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]


def test_quick_start_is_two_commands_that_the_makefile_defines() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([A-Za-z][\w-]*):", makefile, re.M))
    for text in (README.read_text(), (ROOT / "docs" / "getting-started.md").read_text()):
        commands = quick_start_commands(text)
        assert commands == ["make demo", "make test"], commands
        assert {c.split()[1] for c in commands} <= targets


def test_make_test_builds_the_docs() -> None:
    makefile = (ROOT / "Makefile").read_text()
    test_rule = re.search(r"^test:(.*)$", makefile, re.M)
    assert test_rule is not None and "docs" in test_rule.group(1).split()
    docs_rule = makefile[makefile.index("\ndocs:") :].split("\n\n", 1)[0]
    assert "mkdocs build --strict" in docs_rule


def test_every_page_is_in_the_nav() -> None:
    """A page missing from mkdocs.yml's nav is built but unreachable (strict only warns
    about it through `omitted_files`); the generated API reference is the one exception."""
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = [p.name for p in PAGES] + ["tutorial.ipynb"]
    assert not [p for p in pages if f": {p}" not in nav]


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading (lower case, punctuation dropped, spaces to -)."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_readme_anchors_name_its_own_headings() -> None:
    """An in-page link (``#...``) of the README names one of its headings (content that
    moved into docs/ must be linked there, not by a stale anchor)."""
    text = (ROOT / "README.md").read_text()
    anchors = {m.group(1) for m in LINK.finditer(text) if m.group(1).startswith("#")}
    headings = {_slug(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}
    assert anchors <= headings, sorted(anchors - headings)
