"""Every use of another package's private internals, in one place, each bounded and with its public alternative.

The versions these are known to work with are the ranges in ``setup.cfg`` (pytest 8.2 to 9, pytest-asyncio
1, peewee 4, peewee-async 2, Python 3.11 to 3.13 for the unittest class), and CI runs the suite on the
lowest and the newest of them. When one of these breaks, this is the only module to change.

peewee-async's database attributes without an underscore (``pool_backend``, ``pool_backend_cls``,
``pool_params``, ``connect_params``, ``deferred``) are taken as its public surface, under the same bounds.
"""

from __future__ import annotations

import sys
import unittest
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .patches import set_attribute

if TYPE_CHECKING:
    import pytest

# -- peewee-async 2 ------------------------------------------------------------------------------------------------

#: The attribute that allows peewee's synchronous API on a peewee-async database, set for a block by patching.
#: Public alternative: ``database.allow_sync()``, which also closes the synchronous connection on exit, where
#: the plugin keeps one open for the session.
SYNC_ALLOWED = "_allow_sync"


# -- peewee 4 ------------------------------------------------------------------------------------------------------

#: ``peewee.Proxy``'s list of the callbacks ``initialize()`` calls (the plugin's gate adds one for the session,
#: replacing the list, as a proxy takes no other attribute). Public alternative: ``attach_callback()``, which
#: cannot be undone.
PROXY_CALLBACKS = "_callbacks"


def create_table_sql(model: Any) -> list[str]:
    """The SQL that creates ``model``'s table and indexes, without running it (``SchemaManager._create_table``).

    Public alternative: none that does not run the statements (``model.create_table()`` runs them).
    """
    schema = model._schema
    return [schema._create_table(safe=False).query()[0], *(i.query()[0] for i in schema._create_indexes(safe=False))]


def index_parts(index: Any) -> tuple[tuple[Any, ...], bool]:
    """The expressions (fields, or other nodes) and the uniqueness of a ``peewee.Index`` (``_expressions``,
    ``_unique``), as :meth:`Metadata.fields_to_index` gives a model's.

    Public alternative: none but parsing the ``CREATE INDEX`` it renders.
    """
    return tuple(index._expressions), bool(index._unique)


# -- pytest 8.2 to 9 -----------------------------------------------------------------------------------------------


def fixture_scope(item: pytest.Function, name: str) -> str | None:
    """The scope of the fixture ``name`` as ``item`` will use it (``Function._fixtureinfo``, else the fixture
    manager's ``getfixturedefs`` for a fixture added to the test since), or None.

    Public alternative: none before the test runs (``request.fixturenames`` only exists at run time).
    """
    fixturedefs = item._fixtureinfo.name2fixturedefs.get(name) or item.session._fixturemanager.getfixturedefs(
        name, item
    )
    return str(fixturedefs[-1].scope) if fixturedefs else None


def add_fixture(item: pytest.Function, name: str, position: int | None) -> None:
    """Put the fixture ``name`` in ``item``'s closure at ``position`` (unless there already; None: nowhere), and its
    definitions with the test's, found once here: pytest would look up a name it did not see at collection again
    at each set-up (``Function._fixtureinfo.name2fixturedefs``).

    Public alternative: ``request.getfixturevalue(name)`` as the test sets up, which costs that look-up each time.
    """
    info = item._fixtureinfo
    if position is not None and name not in info.names_closure:
        info.names_closure.insert(position, name)
    if name not in info.name2fixturedefs:
        fixturedefs = item.session._fixturemanager.getfixturedefs(name, item)
        if fixturedefs:
            info.name2fixturedefs[name] = fixturedefs


# -- pytest-asyncio 1 ----------------------------------------------------------------------------------------------


def loop_scope(item: pytest.Item) -> str:
    """The loop scope pytest-asyncio runs ``item`` in: its ``asyncio`` marker, else the ini default.

    Mirrors pytest-asyncio's own rule (its marker's ``loop_scope``, or the older ``scope``, then the
    ``asyncio_default_test_loop_scope`` ini value, then ``function``). Public alternative: none; the rule is
    documented but pytest-asyncio exposes no function for it.
    """
    marker = item.get_closest_marker("asyncio")
    scope = marker.kwargs.get("loop_scope") or marker.kwargs.get("scope") if marker else None
    return str(scope or item.config.getini("asyncio_default_test_loop_scope") or "function")


def replaced_test_function(item: pytest.Function, function: Callable[..., Any]) -> Callable[[], None]:
    """Run ``function`` as ``item``'s test function (``Function.obj``, which pytest-asyncio runs on the test's loop)
    until the returned undo puts the original back.

    Public alternative: an async autouse fixture around the test, which costs each test more than its
    ``BEGIN`` and ``ROLLBACK``.
    """
    return set_attribute(item, "obj", function)


# -- Python 3.10 ----------------------------------------------------------------------------------------------


def add_note(error: BaseException, note: str) -> None:
    """``error.add_note(note)``, which Python 3.10 lacks: there the note goes in ``__notes__`` all the same,
    which pytest shows (through the ``exceptiongroup`` backport it depends on there)."""
    if sys.version_info >= (3, 11):
        error.add_note(note)
    else:
        error.__notes__ = [*getattr(error, "__notes__", ()), note]  # type: ignore[attr-defined]


# -- unittest (Python 3.11 to 3.13) --------------------------------------------------------------------------------

#: The ``IsolatedAsyncioTestCase`` internals that :class:`OneLoopTestCase` overrides.
_RUNNER_INTERNALS = ("_setupAsyncioRunner", "_tearDownAsyncioRunner", "_callSetUp", "_callAsync")


def one_loop_problem() -> str | None:
    """Why :class:`OneLoopTestCase` cannot work on this Python, or None."""
    version = f"Python {sys.version_info.major}.{sys.version_info.minor}"
    if sys.version_info < (3, 11):
        return f"{version} has no asyncio.Runner"
    if sys.version_info >= (3, 14):
        return f"this is {version}, whose unittest internals it has not been tested with"
    missing = [name for name in _RUNNER_INTERNALS if not hasattr(unittest.IsolatedAsyncioTestCase, name)]
    if missing:
        return f"this Python's IsolatedAsyncioTestCase lacks {', '.join(missing)}"
    return None


class OneLoopTestCase(unittest.IsolatedAsyncioTestCase):
    """An ``IsolatedAsyncioTestCase`` whose tests all run on the one event loop of ``_class_runner``, and
    that awaits :meth:`_asyncSetUpFirst` before each ``asyncSetUp``.

    ``IsolatedAsyncioTestCase`` makes a loop per test in ``_setupAsyncioRunner`` and calls ``asyncSetUp``
    from ``_callSetUp``: both internals of Python 3.11 to 3.13. Public alternative: none; since Python 3.13
    ``loop_factory`` chooses the kind of loop, not that tests share one.
    """

    _class_runner: Any = None  # an asyncio.Runner, made by the subclass's setUpClass

    async def _asyncSetUpFirst(self) -> None:
        """Runs on the class's loop before ``asyncSetUp``."""

    def _setupAsyncioRunner(self) -> None:
        self._asyncioRunner = type(self)._class_runner

    def _tearDownAsyncioRunner(self) -> None:
        pass  # the subclass's tearDownClass closes the class's loop

    def _callSetUp(self) -> None:
        self._callAsync(self._asyncSetUpFirst)  # type: ignore[attr-defined]
        super()._callSetUp()  # type: ignore[misc]
