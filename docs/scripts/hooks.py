"""mkdocs hooks (``mkdocs.yml``: ``hooks:``): the notebook page's links to other pages.

mkdocs resolves a Markdown page's ``[x](cli.md)`` to the built page's URL; mkdocs-jupyter
renders a notebook with nbconvert, so its links stay ``cli.md``, a file the site does not
have. The notebook keeps the links that work in Jupyter and on GitHub (``cli.md``); here
each one that names a page of the site becomes that page's URL relative to the notebook's
page (``cli.html#flags``). A link to no page is left as it is and logged as a warning
(an error under ``mkdocs build --strict``).
"""

from __future__ import annotations

import logging
import posixpath
import re
from urllib.parse import unquote, urlsplit

log = logging.getLogger("mkdocs.hooks.notebook_links")
HREF = re.compile(r'(href=")([^"]+)(")')


def on_page_content(html, page, config, files):
    if not page.file.src_uri.endswith(".ipynb"):
        return html
    base = posixpath.dirname(page.file.src_uri)

    def resolve(match: re.Match) -> str:
        url = match.group(2)
        parts = urlsplit(url)
        if parts.scheme or parts.netloc or not parts.path.endswith((".md", ".ipynb")):
            return match.group(0)
        target = files.get_file_from_path(
            posixpath.normpath(posixpath.join(base, unquote(parts.path)))
        )
        if target is None or not target.is_documentation_page():
            log.warning("%s links to %s, which is no page of the site", page.file.src_uri, url)
            return match.group(0)
        new = target.url_relative_to(page.file) + (f"#{parts.fragment}" if parts.fragment else "")
        return match.group(1) + new + match.group(3)

    return HREF.sub(resolve, html)
