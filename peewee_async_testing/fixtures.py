"""The plugin's fixtures: the database and its server, the isolation of a test, the pools, the shared data.

Registered by :mod:`peewee_async_testing.plugin`, which imports them. The library itself is imported only
when a fixture runs, so that merely having the plugin installed costs pytest's start-up almost nothing.
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from .markers import LOOP_SCOPES, LoopScope, case_options, is_async, loop_scope, marker_options, plan
from .state import (
    CONFIGURED,
    GATE,
    SERVER_START,
    SUFFIX_ENV,
    TEST_DATABASE,
    WORKER_DATABASE,
    WORKER_DSN,
    describe,
    server_options,
)

if TYPE_CHECKING:
    from .mariadb import MariaDBServer
    from .pools import LoopPool
    from .queries import QueryAssertion, QueryCapture
    from .server import PostgresServer

#: The scopes that data can be shared across: a ``peewee_<scope>_transaction`` fixture each, narrowest first.
SHARED_SCOPES: tuple[LoopScope, ...] = ("class", "module", "session")

NOT_CONFIGURED = (
    "The {fixture} fixture needs a peewee-async database, but none is configured. "
    'Set `peewee_async_database = "myapp.db:database"` (the module and name of your database object) '
    "in your pytest ini file, or override the `peewee_database` fixture in your conftest.py:\n\n"
    "    @pytest.fixture(scope='session')\n"
    "    def peewee_database():\n"
    "        return myapp.db.database\n"
)


@pytest.fixture(scope="session")
def peewee_server(request: pytest.FixtureRequest) -> Iterator[PostgresServer | MariaDBServer]:
    """The server that test databases are made on: a PostgreSQL server, or for a MySQL database (a
    ``peewee_async.MySQLDatabase``) a MariaDB or MySQL one (a :class:`~peewee_async_testing.MariaDBServer`).

    ``--peewee-dsn`` when given, else ``$PEEWEE_ASYNC_TESTING_DSN`` (for MySQL,
    ``$PEEWEE_ASYNC_TESTING_MYSQL_DSN`` first), left running; else a throwaway server started for the session and
    removed at its end (under pytest-xdist, one for all workers).
    """
    from .dsn import hide
    from .exceptions import PeeweeAsyncTestingError
    from .servers import check, from_environment, kind_of, make_server

    config = request.config
    gate = config.stash.get(GATE, None)
    kind = (kind_of(gate.database) if gate is not None else None) or "postgres"
    start = config.stash.get(SERVER_START, None)
    late = from_environment(kind) if start is not None else None
    if start is not None and late is not None:
        start.stop()  # a conftest.py collected later named a server: that one it is
    elif start is not None:
        try:
            yield start.result()
        finally:
            start.stop()
        return
    # Each DSN as a hidden one (its repr masked), so that a traceback through here shows no password.
    worker_dsn = getattr(config, "workerinput", {}).get(WORKER_DSN)
    dsn: str | None
    origin: str | None
    if late is not None:
        dsn, origin = late[0], f"{late[1]}, set during collection (by a conftest.py or a module)"
    elif config.getoption("peewee_dsn"):
        dsn, origin = hide(config.getoption("peewee_dsn")), "--peewee-dsn"
    elif worker_dsn:
        dsn, origin = hide(worker_dsn), "the pytest-xdist controller's server"
    else:
        dsn, origin = from_environment(kind) or (None, None)
    if dsn is not None and origin is not None:
        try:
            check(kind, dsn, origin, gate.spec if gate is not None else None)
        except PeeweeAsyncTestingError as error:
            pytest.fail(str(error), pytrace=False)
    with make_server(kind, dsn=dsn, origin=origin, **server_options(config)) as server:
        yield server


@pytest.fixture(scope="session")
def peewee_database(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The app's peewee-async database object, pointed at the session's test database.

    With ``peewee_async_database`` set in the ini file: makes ``test_<name>`` on the server (one per
    pytest-xdist worker), points the object at it, builds its schema once (the models' tables, or the
    ``peewee_async_migrations``, after the ``peewee_async_sql`` files; then the seed hook's data), and at the end
    drops it (unless ``--peewee-reuse-db``) and restores the object's settings. A database created
    uninitialised (``database=None``) is pointed there too, and is uninitialised again at the end.
    Override this fixture in ``conftest.py`` to hand over a database you manage yourself; the plugin
    then only isolates tests.
    """
    config = request.config
    spec = config.getini("peewee_async_database")
    if not spec:
        fixture = next((name for name in ("in_transaction", "clear_tables") if name in request.fixturenames), None)
        pytest.fail(NOT_CONFIGURED.format(fixture=fixture or "peewee_database"), pytrace=False)
    from .building import SchemaBuild
    from .cleanup import bound_models
    from .exceptions import PeeweeAsyncTestingError
    from .mysqldb import MySQLTestDatabase
    from .servers import kind_of
    from .testdb import TestDatabase

    gate = config.stash[GATE]
    database = gate.database
    kind = kind_of(database)
    try:
        server = request.getfixturevalue("peewee_server") if kind is not None else None
        if server is not None:
            params = server.connect_params("" if kind == "postgres" else None)
            gate.server = (params["host"], params["port"], params.get("hostaddr"))
        models = bound_models(database)
        test_database = (MySQLTestDatabase if kind == "mysql" else TestDatabase)(
            database,
            models,
            build=SchemaBuild.from_config(config, models),
            server=server,
            module=spec.split(":")[0],
            suffix=config.getoption("peewee_db_suffix") or os.environ.get(SUFFIX_ENV, ""),
            worker=os.environ.get("PYTEST_XDIST_WORKER"),
            reuse=config.getoption("peewee_reuse_db"),
            create=config.getoption("peewee_create_db"),
            drop_stale=config.getoption("peewee_drop_stale") or config.getoption("peewee_create_db"),
        )
        gate.building = True
        try:
            test_database.setup()
        finally:
            gate.building = False
    except Exception as error:  # said once for the session, not once per test
        cause = (
            ""
            if isinstance(error, PeeweeAsyncTestingError)
            else f"could not make the test database: {type(error).__name__}: "
        )
        message = f"peewee-async-testing: {cause}" + str(error).removeprefix("peewee-async-testing: ")
        if hasattr(config, "workerinput"):  # a pytest-xdist worker: pytest.exit would crash the controller
            request.session.shouldstop = message
            raise pytest.fail.Exception(message, pytrace=False) from None
        pytest.exit(message, returncode=pytest.ExitCode.USAGE_ERROR)
    config.stash[TEST_DATABASE] = test_database
    gate.ready = True
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:  # a pytest-xdist worker: the controller prints the closing line
        workeroutput[WORKER_DATABASE] = describe(test_database)
    try:
        yield config.stash[CONFIGURED]
    finally:
        test_database.teardown()
        if workeroutput is not None:  # with what its teardown left alone
            workeroutput[WORKER_DATABASE] = describe(test_database)


@pytest.fixture
def in_transaction(request: pytest.FixtureRequest, peewee_database: Any) -> Iterator[Any]:
    """Run the test inside a :class:`~peewee_async_testing.TransactionTestCase`, rolled back afterwards.

    Yields the case; it opens its connection (``case.connection``) and transaction at the test's
    first query, on the test's own event loop, whatever its loop scope. Tests that cannot run in a
    transaction get ``clear_tables`` instead, and ``None``: synchronous tests, tests that ask for
    ``clear_tables``, and tests marked ``@pytest.mark.peewee_db(isolation="clear")``.
    ``peewee_async_autouse = true`` applies it to every test. Tasks the test started and left running
    are cancelled when it ends, and fail it; synchronous queries inside it fail at once.
    """
    item = request.node
    chosen, options = plan(item)
    if chosen == "clear":
        request.getfixturevalue("clear_tables")
        yield None
        return
    from .isolated import IsolatedRun
    from .transaction import TransactionTestCase

    pool = _own_pool(request)
    case = TransactionTestCase(peewee_database, **options)
    run = IsolatedRun(item, case.engine(loop_pool=pool, outer=_shared_case(request)))
    try:
        yield case
    finally:
        run.end()


@pytest.fixture
def peewee_factory(peewee_database: Any, in_transaction: Any) -> Any:
    """A function that takes a :class:`~peewee_async_testing.ModelFactory` class and returns it, once checked that
    its model is bound to ``peewee_database`` (else a ``ConfigurationError`` says so); the test runs isolated
    (``in_transaction``), so what it creates is undone.

    Example::

        async def test_admin(peewee_factory):
            user = await peewee_factory(UserFactory).state("admin").create()
    """
    from .factories import bind_factory

    return lambda factory: bind_factory(factory, peewee_database)


@pytest.fixture
def clear_tables(request: pytest.FixtureRequest, peewee_database: Any) -> Iterator[None]:
    """Empty the tables the test wrote to, after the test.

    For tests whose queries cannot run inside the test transaction: synchronous peewee queries, code
    that commits. Works for sync and async tests alike. Only the tables the test wrote to are emptied,
    whatever wrote them (all of them after a statement that cannot be read, such as DDL), children
    first: on PostgreSQL, a table holding a row written since the test began (by a trigger, a function,
    a raw cursor, another connection too), in one round trip at the end (and one at the start, unless
    the previous ``clear_tables`` test's snapshot of the server can serve); on
    SQLite, the tables its statements and the database's connections wrote to. As with
    ``in_transaction``, ids keep growing from test to test; ``@pytest.mark.peewee_db(reset_sequences=True)``
    restarts the emptied tables' sequences too.
    """
    from .writes import WriteTracker

    sequences = plan(request.node)[1]["reset_sequences"]  # the marker's mistakes fail the test, as with in_transaction
    tracker = WriteTracker(peewee_database)  # its guard first: before anything connects
    if is_async(request.node):  # the test takes connections from the loop's pool: with a pool of one, the kept one
        pool = _own_pool(request)
        if pool.keeps:
            pool.loop.run_until_complete(pool.give_back())
    # Through the sync connection kept for the database, async tests too: the cheapest round trips, no loop.
    sync_connection, models_name = request.node.stash.get(CLEARS_WITH, None) or clears_with(request.node)
    request.getfixturevalue(sync_connection)
    models = request.getfixturevalue(models_name)
    known, carry = request.getfixturevalue("_peewee_tables"), request.getfixturevalue("_peewee_clear_carry")
    carried = carry.take(request.node)
    # PostgreSQL: the mark the last clear carried, if nothing but tests ran since; else one round trip (which
    # tables exist: once), so that the clear finds what any path wrote
    if carried is None or not tracker.resume(carried, models, known=known):
        tracker.mark(models, known=known)
    with tracker:
        yield
    tracker.clear(models, sequences=sequences)
    carry.carried = tracker.carried


@pytest.fixture
def peewee_capture_queries(peewee_database: Any) -> Callable[[], QueryCapture]:
    """:func:`~peewee_async_testing.capture_queries` on the test database: ``async with peewee_capture_queries()
    as captured``."""
    from .queries import capture_queries

    return functools.partial(capture_queries, peewee_database)


@pytest.fixture
def peewee_assert_num_queries(peewee_database: Any) -> Callable[[int], QueryAssertion]:
    """:func:`~peewee_async_testing.assert_num_queries` on the test database: ``async with
    peewee_assert_num_queries(2)``."""
    from .queries import assert_num_queries

    return functools.partial(assert_num_queries, peewee_database)


@pytest.fixture
def peewee_assert_max_num_queries(peewee_database: Any) -> Callable[[int], QueryAssertion]:
    """:func:`~peewee_async_testing.assert_max_num_queries` on the test database: ``async with
    peewee_assert_max_num_queries(2)``."""
    from .queries import assert_max_num_queries

    return functools.partial(assert_max_num_queries, peewee_database)


class _Carry:
    """The mark the last ``clear_tables`` carried (the server's snapshot at the end of its clear), for the next to
    start from without a round trip, as long as nothing but tests and the plugin's own fixtures ran since.

    Rows written after that mark are emptied by the next clear test, so it must be dropped when a fixture that
    may write rows meant to survive ran in between: one of wider scope than a test, set up or torn down, or a
    fixture of the next clear test itself set up before its ``clear_tables``. (What ran between that cannot
    be seen — another process, a hook — is emptied too, if the next test's clear finds it: never fewer.)
    """

    def __init__(self) -> None:
        self.carried: Any = None
        self._before: pytest.Item | None = None  # the test that a function-scoped fixture was last set up for

    def take(self, item: pytest.Item) -> Any:
        """The carried mark, unless a fixture of ``item`` was set up before; once only."""
        carried, self.carried = self.carried, None
        return None if self._before is item else carried

    @pytest.hookimpl(tryfirst=True)
    def pytest_fixture_setup(self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> None:
        self._ran(fixturedef, request)

    def pytest_fixture_post_finalizer(self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> None:
        self._ran(fixturedef, request)

    def _ran(self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> None:
        if getattr(fixturedef.func, "__module__", None) == __name__:
            return  # the plugin's own: none writes rows that outlive it
        if fixturedef.scope == "function":
            self._before = request.node
        else:
            self.carried = None


def _models_fixture(scope: LoopScope, name: str) -> Any:
    @pytest.fixture(scope=scope, name=name)
    def models(peewee_database: Any) -> list[Any]:
        """The models bound to the database, found once for ``clear_tables`` (per the database's scope)."""
        from .cleanup import bound_models

        return bound_models(peewee_database)

    return models


@pytest.fixture(scope="session")
def _peewee_tables() -> dict[str, str]:
    """What the session's ``clear_tables`` know of the bound tables (which exist), filled by the first."""
    return {}


@pytest.fixture(scope="session")
def _peewee_clear_carry(request: pytest.FixtureRequest) -> Iterator[_Carry]:
    """The mark one ``clear_tables`` carries to the next, watching the fixtures that run in between."""
    carry = _Carry()
    request.config.pluginmanager.register(carry, "peewee-async-testing-clear-carry")
    yield carry
    request.config.pluginmanager.unregister(carry)


def _sync_connection_fixture(scope: LoopScope, name: str) -> Any:
    @pytest.fixture(scope=scope, name=name)
    def sync_connection(peewee_database: Any) -> Iterator[None]:
        """peewee's synchronous connection, kept open for ``clear_tables`` of sync tests (per the database's scope)."""
        from ._database import resolve_database

        database = resolve_database(peewee_database, purpose="clear_tables")
        database.connect(reuse_if_open=True)
        yield
        database.close()

    return sync_connection


def _stand_ins_fixture(scope: LoopScope, name: str) -> Any:
    @pytest.fixture(scope=scope, name=name)
    def stand_ins(peewee_database: Any) -> Iterator[None]:
        """The stand-ins of every test transaction, kept on the database from the first ``in_transaction`` test on
        (per the database's scope): outside a test transaction they hand every call to the database's own methods,
        and no test pays for patching the database object (:func:`~.engine.standing_patches`)."""
        from ._database import resolve_database
        from .engine import standing_patches

        with standing_patches(resolve_database(peewee_database, purpose="in_transaction")):
            yield

    return stand_ins


def database_scope(item: pytest.Item) -> LoopScope:
    """The scope of the ``peewee_database`` fixture that ``item`` uses: the plugin's is the session's, an override's
    may be narrower."""
    from ._compat import fixture_scope

    scope = fixture_scope(item, "peewee_database") if isinstance(item, pytest.Function) else None
    return next((known for known in LOOP_SCOPES if known == scope), "session")


def scoped_name(item: pytest.Item, name: str) -> str:
    """The variant of the private fixture ``name`` that lives as long as ``item``'s ``peewee_database``."""
    scope = database_scope(item)
    return name if scope == "session" else f"{name}_{scope}"


#: The pool fixture of a test's own loop (:func:`pool_name`), found once at collection: not again at each set-up.
POOL = pytest.StashKey[str]()
#: The fixtures ``clear_tables`` takes the database's connection and models from (:func:`clears_with`), likewise.
CLEARS_WITH = pytest.StashKey[tuple[str, str]]()


def _own_pool(request: pytest.FixtureRequest) -> LoopPool:
    """The pool of the test's own loop (set up now, if it is not yet)."""
    pool: LoopPool = request.getfixturevalue(request.node.stash.get(POOL, None) or pool_name(request.node))
    return pool


def clears_with(item: pytest.Item) -> tuple[str, str]:
    """The fixtures of the sync connection and the models that ``clear_tables`` uses for ``item``."""
    return scoped_name(item, "_peewee_sync_connection"), scoped_name(item, "_peewee_models")


def pool_name(item: pytest.Item, loop: str | None = None) -> str:
    """The pool fixture for ``item``'s event loop (or the loop of scope ``loop``): it lives as long as the loop,
    but no longer than the ``peewee_database`` it serves (an override of narrower scope gets a pool of that scope,
    on the same loop)."""
    loop = loop or loop_scope(item)
    scope = LOOP_SCOPES[min(LOOP_SCOPES.index(loop), LOOP_SCOPES.index(database_scope(item)))]
    return f"_peewee_pool_{loop}" if scope == loop else f"_peewee_pool_{scope}_on_{loop}"


_peewee_models = _models_fixture("session", "_peewee_models")
_peewee_sync_connection = _sync_connection_fixture("session", "_peewee_sync_connection")
_peewee_stand_ins = _stand_ins_fixture("session", "_peewee_stand_ins")
#: Their variants for a ``peewee_database`` of narrower scope.
_NARROW = {
    **{f"_peewee_models_{scope}": _models_fixture(scope, f"_peewee_models_{scope}") for scope in LOOP_SCOPES[:-1]},
    **{
        f"_peewee_sync_connection_{scope}": _sync_connection_fixture(scope, f"_peewee_sync_connection_{scope}")
        for scope in LOOP_SCOPES[:-1]
    },
    **{
        f"_peewee_stand_ins_{scope}": _stand_ins_fixture(scope, f"_peewee_stand_ins_{scope}")
        for scope in LOOP_SCOPES[:-1]
    },
}


def _pool_fixture(scope: LoopScope, loop: LoopScope | None = None) -> Any:
    """A pool for the event loop of loop scope ``loop`` (``scope`` by default), closed at the end of ``scope``."""
    name = f"_peewee_pool_{scope}" if loop is None else f"_peewee_pool_{scope}_on_{loop}"

    @pytest_asyncio.fixture(scope=scope, loop_scope=loop or scope, name=name)
    async def pool(peewee_database: Any) -> AsyncIterator[LoopPool]:
        from ._database import resolve_database
        from .pools import pool_on_running_loop

        async with pool_on_running_loop(resolve_database(peewee_database, purpose="peewee_database")) as pool:
            yield pool

    return pool


_peewee_pool_function = _pool_fixture("function")
_peewee_pool_class = _pool_fixture("class")
_peewee_pool_module = _pool_fixture("module")
_peewee_pool_package = _pool_fixture("package")
_peewee_pool_session = _pool_fixture("session")
#: Pools for a ``peewee_database`` of narrower scope than the loop: one per such scope and loop.
_NARROW.update(
    {
        f"_peewee_pool_{scope}_on_{loop}": _pool_fixture(scope, loop)
        for loop in LOOP_SCOPES
        for scope in LOOP_SCOPES[: LOOP_SCOPES.index(loop)]
    }
)
globals().update(_NARROW)


def _shared_fixtures(scope: LoopScope) -> Any:
    """``peewee_<scope>_transaction``, and its async variants for each loop scope that outlives ``scope``."""

    def shared(request: pytest.FixtureRequest, peewee_database: Any) -> Any:
        loop = loop_scope(request.node)
        if LOOP_SCOPES.index(loop) < LOOP_SCOPES.index(scope):
            pytest.fail(
                f"peewee_{scope}_transaction keeps one transaction open for the whole {scope}, but the tests get "
                f"a new event loop per {loop}, and a connection belongs to one loop. Give the tests a loop_scope "
                f"of {scope} or wider: `asyncio_default_test_loop_scope = session` in the ini file, or "
                f'@pytest.mark.asyncio(loop_scope="{scope}").',
                pytrace=False,
            )
        request.getfixturevalue(f"_peewee_pool_{loop}")
        return request.getfixturevalue(f"_peewee_shared_{scope}_{loop}")

    shared.__doc__ = f"""A transaction around the whole {scope}, for data its tests share (Django's setUpTestData).

    Data that a {scope}-scoped fixture creates while it holds this transaction is seen by every test of
    the {scope}; each test runs on a savepoint inside it (``in_transaction``), so its changes are undone,
    and the {scope}'s data is rolled back at its end. The tests' loop_scope must be {scope} or wider.
    """
    return pytest.fixture(scope=scope, name=f"peewee_{scope}_transaction")(shared)


def _shared_loop_fixture(scope: LoopScope, loop: LoopScope) -> Any:
    @pytest_asyncio.fixture(scope=scope, loop_scope=loop, name=f"_peewee_shared_{scope}_{loop}")
    async def shared(request: pytest.FixtureRequest, peewee_database: Any) -> AsyncIterator[Any]:
        from .transaction import TransactionTestCase

        case = TransactionTestCase(peewee_database, **case_options(request.config, marker_options(request.node)))
        engine = case.engine(outer=_shared_case(request, inside=scope))
        engine.patch()
        try:
            if engine.outer is None:  # it takes a connection from the pool: with a pool of one, the kept one
                await request.getfixturevalue(f"_peewee_pool_{loop}").give_back()
            await engine.connection()
            yield case
        finally:
            await engine.close(None, None, None)

    return shared


peewee_class_transaction = _shared_fixtures("class")
peewee_module_transaction = _shared_fixtures("module")
peewee_session_transaction = _shared_fixtures("session")
#: What those run on: one per loop scope as wide as the shared scope, or wider.
_SHARED_ON_LOOPS = {
    f"_peewee_shared_{scope}_{loop}": _shared_loop_fixture(scope, loop)
    for scope in SHARED_SCOPES
    for loop in LOOP_SCOPES[LOOP_SCOPES.index(scope) :]
}
globals().update(_SHARED_ON_LOOPS)

#: What the plugin module takes from here (``from .fixtures import *``): every fixture, private ones too.
__all__ = [
    "clear_tables",
    "in_transaction",
    "peewee_assert_max_num_queries",
    "peewee_assert_num_queries",
    "peewee_capture_queries",
    "peewee_class_transaction",
    "peewee_factory",
    "peewee_database",
    "peewee_module_transaction",
    "peewee_server",
    "peewee_session_transaction",
    "_peewee_models",
    "_peewee_pool_class",
    "_peewee_pool_function",
    "_peewee_pool_module",
    "_peewee_pool_package",
    "_peewee_pool_session",
    "_peewee_sync_connection",
    "_peewee_stand_ins",
    "_peewee_tables",
    "_peewee_clear_carry",
    *_NARROW,
    *_SHARED_ON_LOOPS,
]


def _shared_case(request: pytest.FixtureRequest, inside: LoopScope | None = None) -> Any:
    """The case of the narrowest ``peewee_<scope>_transaction`` the test uses (wider than ``inside``), or None:
    the one to nest in. (Already set up: pytest sets up wider scopes first.)"""
    scopes = SHARED_SCOPES if inside is None else SHARED_SCOPES[SHARED_SCOPES.index(inside) + 1 :]
    # A test's own closure where the request is a test's: request.fixturenames builds a new list each time.
    used = request.node.fixturenames if isinstance(request.node, pytest.Function) else request.fixturenames
    names = [f"peewee_{scope}_transaction" for scope in scopes]
    return next((request.getfixturevalue(name) for name in names if name in used), None)
