"""Build-time API reference: one page per public module of ``lightning_ex2``.

Run by the mkdocs-gen-files plugin (``mkdocs.yml``). It walks the package tree, so a
module that moves or appears needs no edit here or in the nav: the pages and
``reference/SUMMARY.md`` (read by literate-nav) are generated from the files on disk.
Private modules and packages (``_name``) are skipped.
"""

from pathlib import Path

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "lightning_ex2"

nav = mkdocs_gen_files.Nav()
for path in sorted(PACKAGE.rglob("*.py")):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)  # ["lightning_ex2", ...]
    if parts[-1] == "__init__":
        parts = parts[:-1]
        page = Path(*parts[1:], "index.md")  # a package: its folder's index page
    else:
        page = Path(*parts[1:]).with_suffix(".md")
    if any(p.startswith("_") for p in parts):
        continue
    nav[tuple(parts)] = page.as_posix()
    with mkdocs_gen_files.open(Path("reference") / page, "w") as fd:
        fd.write(f"::: {'.'.join(parts)}\n")
    mkdocs_gen_files.set_edit_path(Path("reference") / page, path.relative_to(ROOT))

with mkdocs_gen_files.open("reference/SUMMARY.md", "w") as nav_file:
    nav_file.writelines(nav.build_literate_nav())
