"""The built documentation site: every internal link resolves, lists render, no raw markup.

The README says to open ``logs/site/index.html`` from disk (``file://``), where a link
to a folder (``getting-started/``) shows a directory listing and a root-absolute link
(``/cli.html``) points at the file system's root: every ``href``/``src`` of every built
page must name a file of the site, and its ``#fragment`` an ``id`` of that file.

The site is the one ``make docs`` just built (``logs/site``, reused when it is newer than
every input: ``mkdocs.yml``, ``docs/`` and the package's sources), else a fresh build into
a temporary folder (25-45 s on 2 busy cores).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
SITE = ROOT / "logs" / "site"
URL_ATTRS = {"href", "src"}
# a line of a paragraph that starts with a list marker: a list Markdown did not parse
LIST_MARKER = re.compile(r"^\s*(?:[*+-]|\d+[.)])\s+\S")
# Markdown syntax left as text: a link/image, bold, a heading marker; a Sphinx role
RAW_MARKUP = re.compile(
    r"\]\(|\*\*\S|^\s*#{1,6} \S|:(?:class|func|meth|mod|attr|data|exc|obj|ref):", re.M
)
SKIP_TEXT = {"code", "pre", "script", "style", "kbd", "samp", "math", "svg", "textarea"}
# hidden copies of a code cell's source (the notebook page's copy button)
SKIP_CLASSES = {"clipboard-copy-txt"}
VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}


class Page(HTMLParser):
    """The ids, the link targets and the paragraph texts of one HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.urls: list[str] = []
        self.paragraphs: list[str] = []
        self.texts: list[str] = []  # text outside code, one entry per text node
        self._skip: list[str] = []  # the open tags of a code block / hidden element
        self._para: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name == "id" or (tag == "a" and name == "name"):
                self.ids.add(value)
            elif name in URL_ATTRS:
                self.urls.append(value)
        classes = set((dict(attrs).get("class") or "").split())
        if tag not in VOID and (self._skip or tag in SKIP_TEXT or classes & SKIP_CLASSES):
            self._skip.append(tag)
        elif tag == "p":
            self._para = []

    def handle_endtag(self, tag: str) -> None:
        if self._skip:
            if tag in self._skip:
                del self._skip[len(self._skip) - 1 - self._skip[::-1].index(tag) :]
        elif tag == "p" and self._para is not None:
            self.paragraphs.append("".join(self._para))
            self._para = None

    def handle_data(self, data: str) -> None:
        if self._para is not None:
            self._para.append(data if not self._skip else "`code`")
        if not self._skip:
            self.texts.append(data)


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def broken_links(site: Path) -> list[str]:
    """``page: url (why)`` for every internal link of every page of ``site`` that a
    browser reading the files from disk cannot follow."""
    pages = {p: parse(p) for p in sorted(site.rglob("*.html"))}
    broken = []
    for path, page in pages.items():
        if (
            path == site / "404.html"
        ):  # a server's answer to any missing path: root-absolute by design
            continue
        for url in page.urls:
            parts = urlsplit(url)
            if parts.scheme or parts.netloc:  # https:, mailto:, data:, //host
                continue
            where = f"{path.relative_to(site).as_posix()}: {url}"
            if parts.path.startswith("/"):
                broken.append(f"{where} (root-absolute: the file system's root on file://)")
                continue
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if target.is_dir():
                broken.append(f"{where} (a folder: a directory listing on file://)")
            elif not target.is_file():
                broken.append(f"{where} (no such file)")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else parse(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{where} (no id {parts.fragment!r} in {target.name})")
    return broken


def unparsed_lists(site: Path) -> list[str]:
    """Paragraphs with a line that starts with a list marker (``* ``, ``- ``, ``1. ``):
    a list that Markdown folded into running text."""
    hits = []
    for path in sorted(site.rglob("*.html")):
        for para in parse(path).paragraphs:
            lines = [line for line in para.splitlines() if LIST_MARKER.match(line)]
            hits += [
                f"{path.relative_to(site).as_posix()}: {line.strip()[:80]!r}" for line in lines
            ]
    return hits


def raw_markup(site: Path) -> list[str]:
    """Markdown syntax shown as text outside code: ``[x](y)``, ``**bold``, ``## heading``."""
    hits = []
    for path in sorted(site.rglob("*.html")):
        for text in parse(path).texts:
            for m in RAW_MARKUP.finditer(text):
                context = text[max(0, m.start() - 30) : m.end() + 30].strip()
                hits.append(f"{path.relative_to(site).as_posix()}: {context!r}")
    return hits


def _inputs_mtime() -> float:
    files = [
        ROOT / "mkdocs.yml",
        *(ROOT / "docs").rglob("*"),
        *(ROOT / "lightning_ex2").rglob("*.py"),
    ]
    return max(p.stat().st_mtime for p in files if p.is_file())


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    index = SITE / "index.html"
    if index.is_file() and index.stat().st_mtime > _inputs_mtime():
        return SITE
    pytest.importorskip("mkdocs", reason="the docs extra: pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "DISABLE_MKDOCS_2_WARNING": "true", "NO_MKDOCS_2_WARNING": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--quiet",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_site_has_the_pages(site: Path) -> None:
    """The checks below see every page: the nav's pages, the notebook, the API reference."""
    names = {p.relative_to(site).as_posix() for p in site.rglob("*.html")}
    expected = {"index.html", "cli.html", "tutorial.html", "reference/kernels/ex2mcmc.html"}
    assert expected <= names, sorted(expected - names)


def test_every_internal_link_resolves_to_a_file(site: Path) -> None:
    broken = broken_links(site)
    assert not broken, "\n".join(broken)


def test_no_list_renders_as_a_paragraph(site: Path) -> None:
    hits = unparsed_lists(site)
    assert not hits, (
        "list markers inside paragraphs (indent continuations by 4 spaces):\n" + "\n".join(hits)
    )


def test_no_markdown_renders_as_text(site: Path) -> None:
    hits = raw_markup(site)
    assert not hits, "\n".join(hits)


# ---------------------------------------------------------------- the checks themselves
def _write(site: Path, name: str, body: str) -> None:
    path = site / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<html><body>{body}</body></html>", encoding="utf-8")


def test_link_check_finds_each_kind_of_broken_link(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "index.html",
        '<h1 id="top">x</h1><a href="cli.html#flags">ok</a><a href="#top">ok</a>',
    )
    _write(
        tmp_path,
        "cli.html",
        '<h2 id="flags">f</h2><img src="img/a.png"><a href="https://x.org/">ext</a>',
    )
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(b"")
    assert broken_links(tmp_path) == []
    _write(
        tmp_path,
        "guide.html",
        '<a href="getting-started/">folder</a><a href="/cli.html">abs</a><a href="nope.html">missing</a>'
        '<a href="cli.html#nothing">bad anchor</a><a href="#self">bad own anchor</a>'
        '<img src="img/b.png"><a href="img/">folder</a>',
    )
    found = broken_links(tmp_path)
    assert len(found) == 7, found
    assert any("directory listing" in f for f in found) and any("root-absolute" in f for f in found)
    assert any("'nothing'" in f for f in found) and any(
        "img/b.png (no such file)" in f for f in found
    )


def test_list_check_finds_a_folded_list(tmp_path: Path) -> None:
    _write(tmp_path, "ok.html", "<p>a sentence - with a dash\nand 1.5 x</p><ul><li>x</li></ul>")
    assert unparsed_lists(tmp_path) == []
    _write(
        tmp_path,
        "bad.html",
        "<p>items:\n* <strong>fit</strong> warms up\n  more\n2. two</p><p>- first</p>",
    )
    assert len(unparsed_lists(tmp_path)) == 3, unparsed_lists(tmp_path)


def test_raw_markup_check_finds_markdown_text(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "ok.html",
        "<p>see <a href='x.html'>x</a> <code>a](b) **c</code></p><pre>## x</pre>",
    )
    assert raw_markup(tmp_path) == []
    _write(
        tmp_path,
        "bad.html",
        "<p>see [x](x.md) and **bold**</p><p>\n## heading</p><p>a :class:<code>X</code></p>",
    )
    assert len(raw_markup(tmp_path)) == 4, raw_markup(tmp_path)
