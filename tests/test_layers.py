"""The import directions between the package's layers (read from the source, nothing imported)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lightning_ex2"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: inside the same package
                package = ".".join(path.relative_to(ROOT).with_suffix("").parts[: -node.level])
                out.add(f"{package}.{node.module}" if node.module else package)
            elif node.module:
                out.add(node.module)
    return {m for m in out if m.startswith("lightning_ex2")}


def _allowed(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize(
    ("folder", "allowed"),
    [
        ("metrics", ("lightning_ex2.metrics", "lightning_ex2.io", "lightning_ex2.validation",
                     "lightning_ex2.errors", "lightning_ex2.trust")),
        ("networks", ("lightning_ex2.networks", "lightning_ex2.trust")),
    ],
)  # fmt: skip
def test_leaf_packages_import_nothing_above_them(folder: str, allowed: tuple[str, ...]) -> None:
    for path in sorted((PACKAGE / folder).glob("*.py")):
        bad = {m for m in _imports(path) if not _allowed(m, allowed)}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", ["targets/gan.py", "targets/gan_diagnostics.py"])
def test_gan_target_imports_no_module_or_callback(path: str) -> None:
    bad = {
        m
        for m in _imports(PACKAGE / path)
        if _allowed(m, ("lightning_ex2.modules", "lightning_ex2.callbacks"))
    }
    assert not bad, f"{path} imports {sorted(bad)}"
