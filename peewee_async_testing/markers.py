"""What a test asks of the plugin: the ``peewee_db`` marker's options, the isolation they come to, the test's loop.

The marker's arguments are bound to a signature function (:func:`peewee_db`), as pytest-django checks
``django_db``'s, so Python itself finds a misplaced one.
"""

from __future__ import annotations

import inspect
from typing import Any, Literal

import pytest

from .options import CASE_OPTIONS

ISOLATIONS = ("transaction", "clear")
MARKER_OPTIONS = ("isolation", *CASE_OPTIONS)
LoopScope = Literal["function", "class", "module", "package", "session"]
LOOP_SCOPES: tuple[LoopScope, ...] = ("function", "class", "module", "package", "session")


def peewee_db(
    isolation: str = "transaction",
    *,
    allow_transactions: bool = False,
    autosavepoint: bool = False,
    reset_sequences: bool = False,
) -> None:
    """``@pytest.mark.peewee_db(...)``'s signature: the marker's arguments are bound to it, so Python itself
    finds the misplaced ones; ``isolation`` may be given by position (``peewee_db("clear")``)."""


_SIGNATURE = inspect.signature(peewee_db)
_USAGE = (
    "peewee_db(isolation='transaction'|'clear', allow_transactions=False, autosavepoint=False, reset_sequences=False)"
)


def marker_options(node: pytest.Item | pytest.Collector) -> dict[str, Any]:
    """The options the ``peewee_db`` markers of ``node`` give (only those), merged key by key: the test's over its
    class's over its module's. A mistake in any of them fails the test, saying why."""
    options: dict[str, Any] = {}
    for marker in node.iter_markers("peewee_db"):  # closest first
        for name, value in _given(marker).items():
            options.setdefault(name, value)
    return options


def _given(marker: pytest.Mark) -> dict[str, Any]:
    """The options one marker gives, bound to :func:`peewee_db`'s signature and checked."""
    unknown = sorted(set(marker.kwargs) - set(MARKER_OPTIONS))
    if unknown:
        pytest.fail(f"peewee_db marker: unknown option(s) {', '.join(unknown)}; valid: {', '.join(MARKER_OPTIONS)}.")
    try:  # (keywords alone need no binding: a test's set-up costs less)
        options = dict(_SIGNATURE.bind(*marker.args, **marker.kwargs).arguments) if marker.args else dict(marker.kwargs)
    except TypeError as error:
        pytest.fail(f"peewee_db marker: {error}; it takes {_USAGE}.")
    wrong = [name for name in CASE_OPTIONS if name in options and not isinstance(options[name], bool)]
    if wrong:
        pytest.fail(f"peewee_db marker: {', '.join(wrong)} must be True or False.")
    return options


def requested_isolation(node: pytest.Item) -> str | None:
    """The isolation the closest marker that names one names; mistakes are left for the test to report."""
    for marker in node.iter_markers("peewee_db"):
        try:
            isolation = _SIGNATURE.bind(*marker.args, **marker.kwargs).arguments.get("isolation")
        except TypeError:
            return None
        if isolation is not None:
            return str(isolation)
    return None


#: The ini file's options, read once per session (they do not change in it).
_INI_OPTIONS = pytest.StashKey[dict[str, bool]]()


def ini_options(config: pytest.Config) -> dict[str, bool]:
    """TransactionTestCase's options as the ini file sets them (``peewee_async_<option>``), read once."""
    options = config.stash.get(_INI_OPTIONS, None)
    if options is None:
        options = config.stash[_INI_OPTIONS] = {
            name: bool(config.getini(f"peewee_async_{name}")) for name in CASE_OPTIONS
        }
    return options


def case_options(config: pytest.Config, marker: dict[str, Any]) -> dict[str, bool]:
    """TransactionTestCase's options: the ini file's, then the markers' over them, key by key."""
    options = dict(ini_options(config))
    options.update({name: marker[name] for name in CASE_OPTIONS if name in marker})
    return options


#: How a test is isolated, worked out once (see :func:`plan`), with the markers it was worked out from.
PLAN = pytest.StashKey[tuple[tuple[pytest.Mark, ...], tuple[str, dict[str, bool]]]]()


def plan(item: pytest.Function) -> tuple[str, dict[str, bool]]:
    """How to isolate ``item`` ("transaction" or "clear"), and TransactionTestCase's options for it (the ini file's,
    the markers' over them, key by key). Worked out once, at collection, and kept while the test's ``peewee_db``
    markers are the same (a later collection hook, a set-up hook or ``request.applymarker`` may add one); a
    marker's mistake fails the test as it sets up (nothing is kept then, so it is worked out again there)."""
    markers = tuple(item.iter_markers("peewee_db"))
    kept = item.stash.get(PLAN, None)
    if kept is not None and kept[0] == markers:
        return kept[1]
    options = marker_options(item)
    chosen = options.get("isolation", "transaction")
    if chosen not in ISOLATIONS:
        pytest.fail(f"peewee_db marker: isolation={chosen!r} is not one of: {', '.join(map(repr, ISOLATIONS))}.")
    if "clear_tables" in item.fixturenames:
        chosen = "clear"
    elif not is_async(item):
        if "isolation" in options and chosen == "transaction":
            pytest.fail(
                "peewee_db(isolation='transaction') needs an async test: a synchronous test's queries use "
                "their own connection and cannot see a test transaction. Use isolation='clear'."
            )
        chosen = "clear"
    known = (str(chosen), case_options(item.config, options))
    item.stash[PLAN] = (markers, known)
    return known


def is_async(item: pytest.Item) -> bool:
    return isinstance(item, pytest.Function) and inspect.iscoroutinefunction(item.obj)


def loop_scope(item: pytest.Item) -> str:
    """The loop scope pytest-asyncio runs ``item`` in."""
    from ._compat import loop_scope

    return loop_scope(item)
