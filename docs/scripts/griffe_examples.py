"""A griffe extension for the API reference: ``Example:`` sections are examples.

The package's Google-style docstrings head their doctests ``Example:``; griffe reads only
``Examples:`` as an examples section (the singular becomes an admonition whose ``>>>``
lines render as nested quotes). This renames the heading in the text griffe parses,
so the doctests render as code; the package's files are not touched.
"""

import re

from griffe import Extension

HEADING = re.compile(r"^(\s*)Example:\s*$", re.M)


class ExampleSections(Extension):
    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = HEADING.sub(r"\1Examples:", obj.docstring.value)
