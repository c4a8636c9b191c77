"""Sphinx configuration: plain reST docstrings (``:param x:``), autodoc, the furo theme; no network needed."""

from __future__ import annotations

from typing import Any

from sphinx.ext import intersphinx

import peewee_async_testing

project = "peewee-async-testing"
author = "the peewee-async-testing developers"
copyright = "2026, the peewee-async-testing developers"
release = version = peewee_async_testing.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.doctest", "sphinx.ext.intersphinx", "sphinx.ext.viewcode"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
nitpicky = True  # every reference resolves (CI builds with -n -W)
# Curly quotes, but no dashes made of "--": command-line options (--collect-only) stay as typed.
smartquotes_action = "qe"

# The other projects' inventories are kept in docs/_inventories (the build needs no network); where each
# comes from, and how to refresh it, is in docs/_inventories/README.
intersphinx_mapping = {
    "python": ("https://docs.python.org/3/", "_inventories/python.inv"),
    "pytest": ("https://docs.pytest.org/en/stable/", "_inventories/pytest.inv"),
    "peewee": ("https://docs.peewee-orm.com/en/latest/", "_inventories/peewee.inv"),
    "peewee_async": ("https://peewee-async.readthedocs.io/en/latest/", "_inventories/peewee-async.inv"),
}
#: Names that autodoc leaves bare (the fixtures' return types, imported for type checking only).
_OURS = {name: f"peewee_async_testing.queries.{name}" for name in ("QueryAssertion", "QueryCapture")}
nitpick_ignore_regex = [
    # The type variables of generic signatures (a factory's model, a wrapped function's parameters and result).
    ("py:class", r"(peewee_async_testing\.\w+\.)?~?[MPR]"),
    # Python's inventory lists re.Pattern's methods, not the class.
    ("py:class", r"re\.Pattern"),
    # What a capture fills CapturedQueries from: made by the capture, never by the user.
    ("py:class", r"Recorder"),
]


def _resolve(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """The bare names of :data:`_OURS`; and peewee's classes, which its docs name without the module (``Model``,
    not ``peewee.Model``)."""
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py":
        return None
    if target in _OURS:
        python = env.get_domain("py")
        return python.resolve_xref(env, node["refdoc"], app.builder, "class", _OURS[target], node, contnode)
    if not target.startswith("peewee."):
        return None
    node["reftarget"] = target.removeprefix("peewee.")
    found = intersphinx.missing_reference(app, env, node, contnode)
    node["reftarget"] = target
    return found


def setup(app: Any) -> None:
    app.connect("missing-reference", _resolve)


html_theme = "furo"
html_title = f"peewee-async-testing {release}"
exclude_patterns = ["_build", "examples"]
