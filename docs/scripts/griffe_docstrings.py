"""A griffe extension for the API reference: the package's docstring habits, rendered.

* ``Example:`` sections are examples: the package's Google-style docstrings head their
  doctests ``Example:``; griffe reads only ``Examples:`` as an examples section (the
  singular becomes an admonition whose ``>>>`` lines render as nested quotes).
* Sphinx roles (``:class:`~x.ISIR```, ``:func:```, ``:meth:```...) become inline code
  (``ISIR``, with ``~`` dropping the module path as Sphinx does), not literal text.

Only the text griffe parses is changed; the package's files are not touched.
"""

import re

from griffe import Extension

HEADING = re.compile(r"^(\s*)Example:\s*$", re.M)
ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):`(~?)([^`]+)`")


def _role(match: re.Match) -> str:
    name = match.group(2)
    return f"`{name.rsplit('.', 1)[-1] if match.group(1) else name}`"


class PackageDocstrings(Extension):
    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            text = HEADING.sub(r"\1Examples:", obj.docstring.value)
            obj.docstring.value = ROLE.sub(_role, text)
