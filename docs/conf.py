"""Sphinx configuration: ``make docs`` builds docs/ into docs/_build/html, warnings as errors."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.abspath(".."))

project = "wsgisession"
author = "The wsgisession team"
copyright = "the wsgisession team"

extensions = ["myst_parser", "sphinx.ext.autodoc"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]

# Anchors for headings, so guides can link to each other's sections.
myst_heading_anchors = 4

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}

# Furo: a column that code blocks fit in (with _static/layout.css), and a layout
# that reflows to a phone's width. tests/test_docs_site.py checks both in Chromium.
html_theme = "furo"
html_title = "wsgisession"
html_static_path = ["_static"]
html_css_files = ["layout.css"]

# Each public class is importable from two places (wsgisession.SessionMiddleware is
# wsgisession.middleware.SessionMiddleware), and Django's integration has a
# SessionMiddleware of its own: a bare name in a type hint then has several
# targets. The link goes to the first, which is the one meant.
suppress_warnings = ["ref.python"]

#: The files at the repository's root that a page of this site includes, and that page.
_INCLUDED_ROOT_FILES = {"CHANGELOG.md": "changelog.md", "SECURITY.md": "security.md"}
_ROOT_LINK = re.compile(
    r"(?P<before>\]\(|^\[[^\]\n]+\]:[ \t]*)(?:\./)?(?P<target>docs/[^)\s#]+|"
    + "|".join(re.escape(name) for name in _INCLUDED_ROOT_FILES)
    + r")(?=[)\s#]|$)",
    re.MULTILINE,
)


def _links_for_the_site(app: Any, path: Path, docname: str, content: list[str]) -> None:
    """Point the links of an included root file at this site's pages.

    CHANGELOG.md and SECURITY.md live at the root, where GitHub shows them, so they
    link to ``docs/versioning.md`` and ``SECURITY.md``; included in docs/, those
    would name files that are not pages. Here they become ``versioning.md`` and
    ``security.md``.
    """
    if path.parent != Path(".."):
        return

    def page(match: re.Match[str]) -> str:
        target = match["target"]
        return match["before"] + _INCLUDED_ROOT_FILES.get(target, target.removeprefix("docs/"))

    content[0] = _ROOT_LINK.sub(page, content[0])


def setup(app: Any) -> dict[str, bool]:
    app.connect("include-read", _links_for_the_site)
    return {"parallel_read_safe": True}
