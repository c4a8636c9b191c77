"""The gate on the configured database object: it reaches the session's test database only, and only for tests
that are isolated.

Installed as pytest configures (before collection), removed at its end. Every way the object has of
connecting passes through it: peewee's synchronous ``connect()`` and ``cursor()``, and every pool the object
makes (``pool_backend_cls``, its ``connect()`` and ``acquire()``). It refuses, with
:class:`~peewee_async_testing.exceptions.DatabaseAccessError`:

- any database the plugin did not make for the tests: the one the object was configured with (queries at
  import or collection time, before the session's test database is ready; ``database.init()`` called by the
  code under test), or any other whose name does not start with ``test_``;
- while it is told to (:meth:`Gate.refusing`): the set-up and call of a test that is not isolated, unless a
  :class:`~peewee_async_testing.TransactionTestCase` is open on the database in the calling task.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import peewee
from peewee_async.databases import AioDatabase
from peewee_async.pool import PoolBackend

from .engine import innermost
from .exceptions import DatabaseAccessError
from .patches import set_attribute, set_attributes

#: Where a database is: its name (an SQLite file: its real path), host and port.
Target = tuple[str, object, object]

NOT_ISOLATED = (
    "peewee-async-testing: database access not allowed in {test}: the test is not isolated, so what it writes "
    "would outlive it. Mark it @pytest.mark.peewee_db (or peewee_db(isolation='clear') for synchronous queries), "
    "ask for the in_transaction or clear_tables fixture, or set `peewee_async_autouse = true` in the ini file "
    "(or ask for peewee_database, to take the database as it is and isolate the test yourself)."
)

NOT_ISOLATED_UNITTEST = (
    "peewee-async-testing: database access not allowed in {test}: the test is not isolated, so what it writes "
    "would outlive it. Derive the class from peewee_async_testing.AioDatabaseTestCase, which runs every test in a "
    "rolled-back transaction."
)


def _target(database: str | None, params: dict[str, Any], sqlite: bool) -> Target | None:
    if not database:
        return None
    if sqlite:
        return (database if database == ":memory:" else os.path.realpath(database), None, None)
    return (database, params.get("host"), params.get("port"))


class Gate:
    """The gate on ``database``, the object that the ini file's ``peewee_async_database = spec`` names."""

    def __init__(self, database: AioDatabase, spec: str) -> None:
        self.database = database
        self.spec = spec
        self._sqlite = isinstance(database, peewee.SqliteDatabase)
        #: Where the object pointed when configured: the user's real database (None: created uninitialised).
        self.original = _target(database.database, database.connect_params, self._sqlite)
        self._refusal: str | None = None
        self._undo: Callable[[], None] | None = None

    def install(self) -> None:
        database, gate = self.database, self
        pool_class: type[PoolBackend] = database.pool_backend_cls

        class GatedPool(pool_class):  # type: ignore[misc]
            async def connect(self) -> None:
                gate.check(self.database, self.connect_params)
                await super().connect()

            async def acquire(self) -> Any:
                gate.check(self.database, self.connect_params)
                return await super().acquire()

        GatedPool.__name__ = GatedPool.__qualname__ = f"Gated{pool_class.__name__}"
        own_connect, own_cursor = database._connect, database.cursor

        def connect() -> Any:
            self.check(database.database, database.connect_params)
            return own_connect()

        def cursor(*args: Any, **kwargs: Any) -> Any:
            self.check(database.database, database.connect_params)
            return own_cursor(*args, **kwargs)

        undo_methods = set_attributes(database, {"_connect": connect, "cursor": cursor, "pool_backend_cls": GatedPool})
        # The pool in use is replaced outright, not patched: the session replaces it in turn (repoint) while
        # others patch it for a while (a loop's pool), and a patch would put back this one, not the session's.
        own_pool, database.pool_backend = (
            database.pool_backend,
            GatedPool(database=database.database, **database.pool_params),
        )

        def undo() -> None:
            database.pool_backend = own_pool
            undo_methods()

        self._undo = undo

    def uninstall(self) -> None:
        undo, self._undo = self._undo, None
        if undo is not None:
            undo()

    @contextmanager
    def refusing(self, reason: str | None) -> Iterator[None]:
        """Refuse every connection for the block with ``reason`` (None: allow them), unless a TransactionTestCase
        is open on the database in the calling task; the previous state is back after the block."""
        previous, self._refusal = self._refusal, reason
        try:
            yield
        finally:
            self._refusal = previous

    def check(self, database: str | None, params: dict[str, Any]) -> None:
        """Raise :class:`DatabaseAccessError` unless the object may connect to ``database`` now."""
        target = _target(database, params, self._sqlite)
        if target is None:
            raise DatabaseAccessError(
                f"peewee-async-testing: {self.spec} is not initialised (database=None), and the plugin points it "
                "at the test database only when the first test starts. Query it from a fixture or a test, not at "
                "import or collection time."
            )
        if self.original is not None and target[0] == self.original[0]:
            raise DatabaseAccessError(
                f"peewee-async-testing: database access not allowed: {self.spec} still points at your real database "
                f"{database!r}, and the plugin points it at the test database only when the first test starts. "
                "Queries at import or collection time cannot be isolated: run them in a fixture or a test."
            )
        name = os.path.basename(target[0]) if self._sqlite else target[0]
        if not name.startswith("test_"):
            raise DatabaseAccessError(
                f"peewee-async-testing: {self.spec} was pointed at {database!r} during the session (by "
                "database.init() in the code under test?); the plugin lets it reach its test database only."
            )
        if self._refusal is not None and innermost(self.database) is None:
            raise DatabaseAccessError(self._refusal)


@contextmanager
def refusing_imports(module: str) -> Iterator[None]:
    """While ``module`` (named in the ini file) is imported, refuse every connection of every database: the gate
    cannot be on the configured object before the object exists."""

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise DatabaseAccessError(
            f"peewee-async-testing: importing {module!r}, named in the ini file, connected to a database. The plugin "
            "refuses queries at import time, before the test database is ready: run them in a fixture or a test."
        )

    async def refused_async(*args: Any, **kwargs: Any) -> Any:
        refused()

    undo_sync = set_attribute(peewee.Database, "connect", refused)
    undo_async = set_attribute(PoolBackend, "connect", refused_async)
    try:
        yield
    finally:
        undo_async()
        undo_sync()
