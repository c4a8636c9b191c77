"""The gate on the configured database object: it reaches the session's test database only, and only from the
tests that are isolated and the fixtures of wider scope.

Installed as pytest configures (before collection), removed at its end; from the moment pytest loads the
first conftest.py until then, every database of the process refuses to connect (:func:`refuse_all`). Every
way the object has of connecting passes through the gate: peewee's synchronous ``connect()`` and
``cursor()``, ``aio_execute_sql()``, and every pool the object makes (``pool_backend_cls``, its ``connect()``
and ``acquire()``); a ``peewee.DatabaseProxy`` named in the ini file cannot be re-initialised. It refuses,
with :class:`~peewee_async_testing.exceptions.DatabaseAccessError`:

- any database but the session's test database: the one the object was configured with (queries at import or
  collection time, before the test database is ready; ``database.init()`` in the code under test), any other
  server, any name that does not start with ``test_``;
- outside the windows the plugin opens (:meth:`Gate.refusing`): a test that is not isolated, its fixtures,
  and whatever runs between tests (a task left running), unless a
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

from ._compat import PROXY_CALLBACKS
from .engine import innermost
from .exceptions import DatabaseAccessError
from .patches import set_attribute, set_attributes

#: The settings that decide where the object connects (besides its database name).
PLACE = ("host", "port", "hostaddr", "service", "dsn", "unix_socket")
#: Those that send a connection elsewhere than its host and port say: libpq's, and PyMySQL's socket.
REDIRECTS = ("service", "dsn", "unix_socket")
#: Where a database is: its name (an SQLite file: its real path), host, port and host address.
Target = tuple[str, object, object, object]

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
BETWEEN_TESTS = (
    "peewee-async-testing: database access not allowed outside a test: this runs after its test ended (a task "
    "left running?) or in a tear-down of a test that is not isolated, so what it writes would outlive the test."
)


def _without_driver_frames(error: Exception) -> Exception:
    """``error``, raised afresh from here: the frames of psycopg2's ``connect()`` hold the password in their
    arguments, which pytest's long tracebacks show. The message (libpq's, with no password) is kept."""
    error.__traceback__ = None
    return error


def _target(database: str | None, params: dict[str, Any], sqlite: bool) -> Target | None:
    if not database:
        return None
    if sqlite:
        return (database if database == ":memory:" else os.path.realpath(database), None, None, None)
    return (database, params.get("host"), params.get("port"), params.get("hostaddr"))


class Gate:
    """The gate on ``database``, the object (or behind the ``proxy``) that ``peewee_async_database = spec`` names."""

    def __init__(self, database: AioDatabase, spec: str, proxy: peewee.DatabaseProxy | None = None) -> None:
        self.database = database
        self.spec = spec
        self.proxy = proxy
        self._sqlite = isinstance(database, peewee.SqliteDatabase)
        #: Where the object pointed when configured: the user's real database (None: created uninitialised).
        self.original = _target(database.database, database.connect_params, self._sqlite)
        #: The (host, port, host address) of the server of the session's test database, once known (PostgreSQL).
        self.server: tuple[object, object, object] | None = None
        #: Whether the session's test database is ready (the object pointed at it).
        self.ready = False
        #: While the test database is built (its setup and seed hooks run).
        self.building = False
        #: A ``peewee_database`` fixture of the user's: it points the object itself; only the original is refused.
        self.overridden = False
        self._refusals: list[str | None] = [BETWEEN_TESTS]
        self._allowed: tuple[object, ...] | None = None  # the last place found allowed: checked once, not per query
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
        own_connect, own_cursor, own_execute = database._connect, database.cursor, database.aio_execute_sql

        def connect() -> Any:
            self.check(database.database, database.connect_params)
            try:
                return own_connect()
            except Exception as error:
                if database.connect_params.get("password"):
                    raise _without_driver_frames(error) from None
                raise

        def cursor(*args: Any, **kwargs: Any) -> Any:
            self.check(database.database, database.connect_params)
            return own_cursor(*args, **kwargs)

        async def aio_execute_sql(*args: Any, **kwargs: Any) -> Any:  # a connection held from before: no acquire
            self.check(database.database, database.connect_params)
            return await own_execute(*args, **kwargs)

        patches = {"_connect": connect, "cursor": cursor, "aio_execute_sql": aio_execute_sql}
        undo_methods = set_attributes(database, {**patches, "pool_backend_cls": GatedPool})
        undo_proxy = None
        if self.proxy is not None:
            callbacks = [*getattr(self.proxy, PROXY_CALLBACKS), self._refuse_initialize]
            undo_proxy = set_attribute(self.proxy, PROXY_CALLBACKS, callbacks)
        # The pool in use is replaced outright, not patched: the session replaces it in turn (repoint) while
        # others patch it for a while (a loop's pool), and a patch would put back this one, not the session's.
        own_pool, database.pool_backend = (
            database.pool_backend,
            GatedPool(database=database.database, **database.pool_params),
        )

        def undo() -> None:
            database.pool_backend = own_pool
            try:
                undo_methods()
            finally:
                if undo_proxy is not None:
                    undo_proxy()

        self._undo = undo

    def uninstall(self) -> None:
        undo, self._undo = self._undo, None
        if undo is not None:
            undo()

    def _refuse_initialize(self, obj: Any) -> None:
        """The proxy's ``initialize()`` callback: it put ``obj`` in; the gated object goes back, and the call fails."""
        if obj is self.database:
            return
        assert self.proxy is not None
        self.proxy.obj = self.database
        raise DatabaseAccessError(
            f"peewee-async-testing: {self.spec} is a peewee.DatabaseProxy that the plugin has pointed at the test "
            "database, and it cannot be initialised again during the session (by an app's start-up?): the new "
            "object would reach whatever it points at. Skip that initialize() under the tests."
        )

    @contextmanager
    def refusing(self, reason: str | None) -> Iterator[None]:
        """Refuse every connection for the block with ``reason`` (None: a window, where they are allowed), unless a
        TransactionTestCase is open on the database in the calling task; the previous state is back after it."""
        self.push(reason)
        try:
            yield
        finally:
            self.pop()

    def push(self, reason: str | None) -> None:
        self._refusals.append(reason)

    def pop(self) -> None:
        self._refusals.pop()

    def check(self, database: str | None, params: dict[str, Any]) -> None:
        """Raise :class:`DatabaseAccessError` unless the object may connect to ``database`` now."""
        place = (database, *(params.get(key) for key in PLACE), self.server, self.overridden)
        if place != self._allowed:
            self._check_place(database, params)
            self._allowed = place
        if self._refusals[-1] is not None and not self.overridden and innermost(self.database) is None:
            raise DatabaseAccessError(self._refusals[-1])

    def _check_place(self, database: str | None, params: dict[str, Any]) -> None:
        target = _target(database, params, self._sqlite)
        if target is None:
            raise DatabaseAccessError(
                f"peewee-async-testing: {self.spec} is not initialised (database=None), and the plugin points it "
                "at the test database only when the first test starts. Query it from a fixture or a test, not at "
                "import or collection time."
            )
        if self.original is not None and target[0] == self.original[0]:
            when = (
                "was pointed at your real database {name!r} while the test database was built (by database.init() "
                "in a setup or seed hook?). Leave the object where the plugin points it."
                if self.building
                else "was pointed back at your real database {name!r} during the session (by database.init() in an "
                "app's start-up?). Skip that init() under the tests."
                if self.ready
                else "still points at your real database {name!r}: the plugin points it at the test database "
                "when the first test starts, so queries at import or collection time cannot be isolated. Run them "
                "in a fixture or a test."
            )
            raise DatabaseAccessError(f"peewee-async-testing: {self.spec} " + when.format(name=database))
        if self.overridden:
            return
        name = os.path.basename(target[0]) if self._sqlite else target[0]
        elsewhere = self.server is not None and not self._sqlite and target[1:] != self.server
        elsewhere = elsewhere or any(params.get(key) for key in REDIRECTS)  # the driver would look there
        if not name.startswith("test_") or elsewhere:
            raise DatabaseAccessError(
                f"peewee-async-testing: {self.spec} was pointed at {database!r} during the session (by "
                "database.init() in the code under test?); the plugin lets it reach its test database only."
            )


@contextmanager
def refuse_all(origin: str) -> Iterator[None]:
    """While ``origin`` is loaded (a conftest.py, the modules named in the ini file), refuse every connection of
    every database: the gate cannot be on the configured object before the object exists."""

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise DatabaseAccessError(
            f"peewee-async-testing: {origin} connected to a database as pytest loaded it. The plugin refuses "
            "queries at import time, before the test database is ready: run them in a fixture or a test."
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
