"""The import directions between the package's layers (read from the source, nothing imported)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lightning_ex2"


def _imports(path: Path, within: str = "lightning_ex2") -> set[str]:
    """The modules ``path`` imports whose name starts with ``within`` (``""``: all)."""
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
    return {m for m in out if m.startswith(within)}


def _allowed(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


#: the framework-free core: every module outside these two packages
SHELL, DOMAIN = PACKAGE / "lightning", PACKAGE / "gan"
CORE = sorted(
    p for p in PACKAGE.rglob("*.py") if not p.is_relative_to(SHELL) and not p.is_relative_to(DOMAIN)
)


def test_the_layers_exist_and_the_core_is_most_of_the_tree() -> None:
    names = {p.relative_to(PACKAGE).parts[0] for p in CORE}
    assert {"kernels", "proposals", "targets", "diagnostics", "output", "sampling.py"} <= names
    assert len(CORE) > len(list(SHELL.rglob("*.py")))


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_core_imports_neither_lightning_nor_gan(path: Path) -> None:
    """Deferred imports (inside functions) count too: ``ast.walk`` sees them."""
    bad = {
        m for m in _imports(path) if _allowed(m, ("lightning_ex2.lightning", "lightning_ex2.gan"))
    }
    bad |= {m for m in _imports(path, "") if _allowed(m, ("pytorch_lightning", "lightning"))}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_the_shell_imports_no_gan() -> None:
    for path in sorted(SHELL.rglob("*.py")):
        bad = {m for m in _imports(path) if _allowed(m, ("lightning_ex2.gan",))}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize(
    ("files", "allowed"),
    [
        ("diagnostics/*.py", ("lightning_ex2.diagnostics", "lightning_ex2.validation",
                              "lightning_ex2.errors", "lightning_ex2.trust")),
        ("gan/networks.py", ("lightning_ex2.trust",)),
        ("gan/checkpoints.py", ("lightning_ex2.gan.networks", "lightning_ex2.trust")),
    ],
)  # fmt: skip
def test_leaf_modules_import_nothing_above_them(files: str, allowed: tuple[str, ...]) -> None:
    paths = sorted(PACKAGE.glob(files))
    assert paths
    for path in paths:
        bad = {m for m in _imports(path) if not _allowed(m, allowed)}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", ["gan/target.py", "gan/hardness.py", "gan/platt.py"])
def test_gan_target_imports_no_module_or_callback(path: str) -> None:
    """The target and its diagnostics are torch only: no Lightning module or callback."""
    shell = (
        "lightning_ex2.lightning",
        "lightning_ex2.gan.training",
        "lightning_ex2.gan.calibration",
        "lightning_ex2.gan.callbacks",
        "lightning_ex2.gan.data",
    )
    bad = {m for m in _imports(PACKAGE / path) if _allowed(m, shell)}
    bad |= {m for m in _imports(PACKAGE / path, "") if _allowed(m, ("pytorch_lightning",))}
    assert not bad, f"{path} imports {sorted(bad)}"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """``{module: modules of the package it imports}``, deferred imports inside functions
    included; ``from p import m`` of a submodule ``m`` is an edge to ``p.m``, not to ``p``."""
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}

    def known(name: str) -> str:
        while name not in paths:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, *([node.module] if node.module else [])])
                names = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in paths else base for a in node.names
                ]
            else:
                continue
            targets |= {known(n) for n in names if n.split(".")[0] == "lightning_ex2"}
        graph[module] = targets - {module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle ``[a, b, ..., a]`` of ``graph``, or ``None`` (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert "lightning_ex2.output.netcdf" in graph["lightning_ex2.sampling"]  # deferred import
    assert "lightning_ex2.interrupt" in graph["lightning_ex2.sampling"]  # `from pkg import mod`
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])
