"""The API reference's parameter tables: every documented parameter is a parameter of the
signature, with its type and default.

The reference (mkdocstrings) reads the docstrings with griffe and the site's extension
``docs/scripts/griffe_docstrings.py``. A documented name that the signature lacks (a typo,
a renamed parameter, ``a, b: text`` read as one name) is shown without a type and as
"required", whatever its default.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

griffe = pytest.importorskip("griffe", reason="the docs extra: pip install -e '.[docs]'")

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())


def _load(extensions: bool):
    sys.path.insert(0, str(ROOT / "docs" / "scripts"))
    try:
        from griffe_docstrings import PackageDocstrings
    finally:
        sys.path.remove(str(ROOT / "docs" / "scripts"))
    loader = griffe.GriffeLoader(
        extensions=griffe.load_extensions(PackageDocstrings) if extensions else None,
        search_paths=[str(ROOT)],
        docstring_parser="google",
        docstring_options={"warn_unknown_params": False, "warn_missing_types": False},
    )
    return loader.load("lightning_ex2")


def _documented(obj):
    """(object, signature, rows) for every public class and function with a docstring."""
    for member in obj.members.values():
        if member.is_alias or (member.name.startswith("_") and member.name != "__init__"):
            continue
        if member.is_module or member.is_class:
            yield from _documented(member)
        if not (member.is_class or member.is_function) or member.docstring is None:
            continue
        function = member.members.get("__init__") if member.is_class else member
        if function is None or function.is_alias:
            continue
        for section in member.docstring.parsed:
            if section.kind is griffe.DocstringSectionKind.parameters:
                yield member, function.parameters, section.value


def mismatches(package) -> list[str]:
    out = []
    for obj, signature, rows in _documented(package):
        for row in rows:
            name = row.name.lstrip("*")
            if name not in signature:
                out.append(f"{obj.path}: {row.name!r} is not a parameter of the signature")
            elif str(row.default) != str(signature[name].default):
                out.append(
                    f"{obj.path}: {row.name} shows default {row.default}, the signature has {signature[name].default}"
                )
    return out


@pytest.fixture(scope="module")
def package():
    return _load(extensions=True)


def test_every_documented_parameter_has_the_signature_default(package) -> None:
    bad = mismatches(package)
    assert not bad, "\n".join(bad)


def test_ex2mcmc_correlation_rows_show_their_defaults(package) -> None:
    ex2 = package["kernels.ex2mcmc.Ex2MCMC"]
    (rows,) = [
        s.value for s in ex2.docstring.parsed if s.kind is griffe.DocstringSectionKind.parameters
    ]
    shown = {r.name: (str(r.annotation), str(r.default)) for r in rows}
    assert shown["correlation"] == ("float", "0.0") and shown["correlation_prob"] == (
        "float",
        "1.0",
    )


def test_the_check_sees_grouped_names_without_the_extension() -> None:
    """Without the site's extension griffe reads ``a, b: text`` as one unknown name: the
    check above reports each such row (it cannot pass vacuously)."""
    bad = mismatches(_load(extensions=False))
    assert any("'correlation, correlation_prob'" in b for b in bad), bad
