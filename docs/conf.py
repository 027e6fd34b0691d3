"""Sphinx configuration: ``make docs`` builds docs/ into docs/_build/html, warnings as errors."""

from __future__ import annotations

import os
import sys

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

html_theme = "alabaster"
html_title = "wsgisession"

# Each public class is importable from two places (wsgisession.SessionMiddleware is
# wsgisession.middleware.SessionMiddleware), and Django's integration has a
# SessionMiddleware of its own: a bare name in a type hint then has several
# targets. The link goes to the first, which is the one meant.
suppress_warnings = ["ref.python"]
