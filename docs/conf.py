"""Sphinx configuration: plain reST docstrings (``:param x:``), autodoc, the furo theme; no network needed."""

from __future__ import annotations

import peewee_async_testing

project = "peewee-async-testing"
author = "the peewee-async-testing developers"
copyright = "2026, the peewee-async-testing developers"
release = version = peewee_async_testing.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.doctest", "sphinx.ext.viewcode"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
nitpicky = False

html_theme = "furo"
html_title = f"peewee-async-testing {release}"
exclude_patterns = ["_build", "examples"]
