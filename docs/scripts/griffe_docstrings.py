"""A griffe extension for the API reference: the package's docstring habits, rendered.

* ``Example:`` sections are examples: the package's Google-style docstrings head their
  doctests ``Example:``; griffe reads only ``Examples:`` as an examples section (the
  singular becomes an admonition whose ``>>>`` lines render as nested quotes).
* Sphinx roles (``:class:`~x.ISIR```, ``:func:```, ``:meth:```...) become inline code
  (``ISIR``, with ``~`` dropping the module path as Sphinx does), not literal text.
* Parameters documented together (``correlation, correlation_prob: i-SIR dependent
  proposals``) become one row each, with the type and default of the signature; griffe
  reads ``correlation, correlation_prob`` as one name that is not in the signature, which
  the reference showed without a type and as "required".

Only the text griffe parses is changed; the package's files are not touched.
"""

import re

from griffe import DocstringParameter, DocstringSectionKind, Extension

HEADING = re.compile(r"^(\s*)Example:\s*$", re.M)
ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):`(~?)([^`]+)`")


def _role(match: re.Match) -> str:
    name = match.group(2)
    return f"`{name.rsplit('.', 1)[-1] if match.group(1) else name}`"


def _split_grouped_parameters(obj) -> None:
    """One row per name of a ``a, b: text`` entry, typed and defaulted from the signature."""
    function = obj.members.get("__init__") if obj.is_class else obj
    signature = getattr(function, "parameters", None) if function is not None else None
    if signature is None or "," not in obj.docstring.value:
        return
    for section in obj.docstring.parsed:  # parsed once and cached: the rows rendered
        if section.kind is not DocstringSectionKind.parameters:
            continue
        rows = []
        for row in section.value:
            names = [n.strip() for n in row.name.split(",")]
            if len(names) == 1 or not all(n.lstrip("*") in signature for n in names):
                rows.append(row)
                continue
            for name in names:
                param = signature[name.lstrip("*")]
                rows.append(
                    DocstringParameter(
                        name=name,
                        description=row.description,
                        annotation=param.annotation,
                        value=param.default,
                    )
                )
        section.value[:] = rows


class PackageDocstrings(Extension):
    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            text = HEADING.sub(r"\1Examples:", obj.docstring.value)
            obj.docstring.value = ROLE.sub(_role, text)

    def on_object(self, *, obj, **kwargs) -> None:  # the tree is complete: signatures known
        if obj.docstring is not None and (obj.is_class or obj.is_function):
            _split_grouped_parameters(obj)
