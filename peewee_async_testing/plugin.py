"""The pytest plugin, registered through the ``pytest11`` entry point ``peewee_async_testing``.

Options, ini settings, the ``peewee_db`` marker and the fixtures. Inert until configured: nothing
autouses and no server starts unless the ini file names a database, a test carries the marker, or
a test asks for a fixture. The library itself is imported only when a fixture runs, so that merely
having the plugin installed costs pytest's start-up almost nothing.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, Literal

import pytest

try:
    import pytest_asyncio
except ImportError:  # installed without the [pytest] extra: inert, and says so once configured
    pytest_asyncio = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from .background_start import BackgroundStart
    from .pools import LoopPool
    from .server import PostgresServer
    from .testdb import TestDatabase

ISOLATIONS = ("transaction", "clear")
CASE_OPTIONS = ("allow_transactions", "autosavepoint", "reset_sequences")
MARKER_OPTIONS = ("isolation", *CASE_OPTIONS)
LoopScope = Literal["function", "class", "module", "package", "session"]
LOOP_SCOPES: tuple[LoopScope, ...] = ("function", "class", "module", "package", "session")
#: The scopes that data can be shared across: a ``peewee_<scope>_transaction`` fixture each.
SHARED_SCOPES: tuple[LoopScope, ...] = ("class", "module", "session")
SUFFIX_ENV = "PEEWEE_ASYNC_TESTING_DB_SUFFIX"

TEST_DATABASE: pytest.StashKey[TestDatabase] = pytest.StashKey()
SERVER_START: pytest.StashKey[BackgroundStart] = pytest.StashKey()
WORKER_DSN = "peewee_async_testing_dsn"  # how an xdist controller hands its server to the workers
WORKER_DATABASE = "peewee_async_testing_database"  # how an xdist worker tells the controller of its test database
#: The xdist controller's: what the workers told of their test databases (see :func:`_describe`).
WORKER_DATABASES: pytest.StashKey[list[dict[str, Any]]] = pytest.StashKey()
#: pytest's options for sessions that run no test: no server for them.
NO_TESTS_RUN = ("collectonly", "showfixtures", "show_fixtures_per_test", "setupplan")
#: pytest's cache key: the configured databases (``module:attribute``) found not to be PostgreSQL.
NOT_POSTGRES = "peewee_async_testing/not_postgres"

NOT_CONFIGURED = (
    "The {fixture} fixture needs a peewee-async database, but none is configured. "
    'Set `peewee_async_database = "myapp.db:database"` (the module and name of your database object) '
    "in your pytest ini file, or override the `peewee_database` fixture in your conftest.py:\n\n"
    "    @pytest.fixture(scope='session')\n"
    "    def peewee_database():\n"
    "        return myapp.db.database\n"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("peewee-async-testing", "peewee-async test databases")
    group.addoption(
        "--peewee-dsn",
        metavar="URL",
        help="PostgreSQL server to make the test database on, as postgresql://user:password@host:port/dbname "
        "(default: $PEEWEE_ASYNC_TESTING_DSN, else a throwaway server started for the run)",
    )
    group.addoption(
        "--peewee-reuse-db",
        action="store_true",
        help="keep the test database after the run, and reuse it (no table creation) while the schema is unchanged",
    )
    group.addoption(
        "--peewee-create-db", action="store_true", help="make the test database afresh, even with --peewee-reuse-db"
    )
    group.addoption(
        "--peewee-db-suffix",
        metavar="TEXT",
        help=f"add TEXT to every test database name, for runs that share one server (default: ${SUFFIX_ENV})",
    )
    group.addoption(
        "--peewee-drop-stale",
        action="store_true",
        help="first drop this project's test databases that no live session holds (left by crashed runs)",
    )
    parser.addini("peewee_async_database", "the app's database object, as package.module:attribute", default="")
    parser.addini(
        "peewee_async_models",
        "modules to import so every model is registered (default: the database's module)",
        type="args",
    )
    parser.addini(
        "peewee_async_autouse", "wrap every test in a test transaction without asking", type="bool", default=False
    )
    parser.addini(
        "peewee_async_allow_transactions",
        "let the code under test open transactions (as savepoints) inside the test transaction",
        type="bool",
        default=False,
    )
    parser.addini(
        "peewee_async_server_locale",
        "the throwaway server's locale (default: $PEEWEE_ASYNC_TESTING_PG_LOCALE, else C.UTF-8 or another UTF-8 one)",
        default="",
    )
    parser.addini(
        "peewee_async_server_settings",
        "the throwaway server's extra postgresql.conf settings, one `name = value` per line "
        "(default: $PEEWEE_ASYNC_TESTING_PG_SETTINGS)",
        type="linelist",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "peewee_db(isolation='transaction'|'clear', allow_transactions=False, autosavepoint=False, "
        "reset_sequences=False): the test uses the peewee-async database, isolated by a rolled-back transaction "
        "(the default for async tests; the other options are TransactionTestCase's) or by clearing the tables.",
    )
    spec = config.getini("peewee_async_database")
    if spec and (spec.count(":") != 1 or not all(spec.split(":"))):
        raise pytest.UsageError(
            f"peewee_async_database = {spec!r} is not of the form package.module:attribute "
            '(for example "myapp.db:database").'
        )
    if spec and pytest_asyncio is None:
        raise pytest.UsageError(
            f"peewee_async_database = {spec} is set, but pytest-asyncio is not installed, and the plugin runs "
            "the tests' event loops through it. Install the plugin's extra: pip install 'peewee-async-testing[pytest]'."
        )
    if spec or config.getini("peewee_async_server_settings"):  # a mistake is said once, before any test
        from .exceptions import ConfigurationError

        try:
            _server_options(config)
        except ConfigurationError as error:
            raise pytest.UsageError(str(error)) from None


def pytest_report_header(config: pytest.Config) -> str | None:
    spec = config.getini("peewee_async_database")
    if not spec:
        return None
    autouse = "on" if config.getini("peewee_async_autouse") else "off"
    return f"peewee-async-testing: database {spec}, autouse {autouse}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Isolate the tests that carry the marker (every test with ``peewee_async_autouse = true``), and give
    the tests and fixtures that use the database a pool on their event loop, closed with it."""
    autouse = config.getini("peewee_async_autouse")
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        names = item.fixturenames
        marker = item.get_closest_marker("peewee_db")
        if not {"in_transaction", "clear_tables"} & set(names) and (autouse or marker is not None):
            # clear_tables straight away where in_transaction would only hand over to it: one fixture less.
            isolation = marker.kwargs.get("isolation") if marker else None
            clears = isolation == "clear" or (isolation is None and not _is_async(item))
            names.insert(_first_function_scoped(item), "clear_tables" if clears else "in_transaction")
        if "peewee_database" in names:
            # Session-scoped first: fixtures of wider scope that use the database run on the session's loop.
            pools = ["_peewee_pool_session", f"_peewee_pool_{_loop_scope(item)}"] if _is_async(item) else []
            position = names.index("peewee_database") + 1
            for pool in dict.fromkeys(pools or ["_peewee_pool_session"]):
                if pool not in names:
                    names.insert(position, pool)
                    position += 1


def _server_options(config: pytest.Config) -> dict[str, Any]:
    """The throwaway server's locale and settings: the ini file's, else the environment's (None where neither
    sets them: the server's default)."""
    from .server import LOCALE_ENV, environment_settings, parse_settings

    lines = config.getini("peewee_async_server_settings")
    return {
        "locale": config.getini("peewee_async_server_locale") or os.environ.get(LOCALE_ENV) or None,
        "settings": parse_settings(lines, "peewee_async_server_settings") if lines else environment_settings() or None,
    }


def _starts_a_server(config: pytest.Config) -> bool:
    """Whether the session needs a throwaway server: a database is configured, no server is given, this is
    not a pytest-xdist worker (the controller starts one for all), and the database was not found to be
    something else than PostgreSQL last time (remembered in pytest's cache)."""
    spec = config.getini("peewee_async_database")
    if not spec or config.getoption("peewee_dsn"):
        return False  # (and nothing imported: unconfigured, the plugin costs nothing)
    from .server import DSN_ENV

    if os.environ.get(DSN_ENV):
        return False
    cache = getattr(config, "cache", None)
    not_postgres = cache.get(NOT_POSTGRES, []) if cache is not None else []
    return not hasattr(config, "workerinput") and spec not in not_postgres


def _remember_engine(config: pytest.Config, spec: str, postgres: bool) -> None:
    cache = getattr(config, "cache", None)
    if cache is None:
        return
    not_postgres = cache.get(NOT_POSTGRES, [])
    if (spec in not_postgres) != (not postgres):
        cache.set(NOT_POSTGRES, sorted(set(not_postgres) - {spec} if postgres else {*not_postgres, spec}))


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if not any(getattr(config.option, name, False) for name in NO_TESTS_RUN) and _starts_a_server(config):
        from .background_start import BackgroundStart

        config.stash[SERVER_START] = BackgroundStart(**_server_options(config))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist controller: let every worker make its database on the one throwaway server started here.

    So the workers clone one template, and start no server of their own.
    """
    config = node.config
    if SERVER_START not in config.stash:
        if not _starts_a_server(config):
            return
        from .background_start import BackgroundStart

        config.stash[SERVER_START] = BackgroundStart(**_server_options(config))
    node.workerinput[WORKER_DSN] = config.stash[SERVER_START].result().dsn


def pytest_unconfigure(config: pytest.Config) -> None:
    start = config.stash.get(SERVER_START, None)
    if start is not None:
        start.stop()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist controller: keep what a worker that is done tells of its test database, for the closing line."""
    described = getattr(node, "workeroutput", {}).get(WORKER_DATABASE)  # none from a worker that crashed
    if described is not None:
        node.config.stash.setdefault(WORKER_DATABASES, []).append(described)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The closing line: the session's test database, or under pytest-xdist the workers' (one line for the
    databases that went the same way)."""
    test_database = config.stash.get(TEST_DATABASE, None)
    described = [_describe(test_database)] if test_database is not None else config.stash.get(WORKER_DATABASES, [])
    groups: dict[tuple[str, str], list[str]] = {}
    for database in described:
        groups.setdefault((database["where"], database["how"]), []).append(database["name"])
    lines = []
    for (where, how), names in groups.items():
        names.sort(key=lambda name: (len(name), name))  # test_app_gw2 before test_app_gw10
        label = "test databases" if len(names) > 1 else "test database"
        lines.append(f"peewee-async-testing: {label} {', '.join(names)} {where} ({how})")
    stale = sorted({name for database in described for name in database["stale"]})
    if lines and stale:
        lines[-1] += f"; dropped stale: {', '.join(stale)}"
    for line in lines:
        terminalreporter.write_line(line)


def _describe(test_database: TestDatabase) -> dict[str, Any]:
    """What the closing line tells of a test database: its name, where it is, how it was made and removed,
    and the stale databases dropped first."""
    how = "reused" if test_database.reused else "created"
    if test_database.server is not None:
        where = f"on {test_database.server.host}:{test_database.server.port}"
        if not test_database.reuse:
            how += ", dropped" if test_database.server.attached else ", removed with the server"
    else:
        where, how = "(SQLite)", how + ", removed"
    return {"name": test_database.name, "where": where, "how": how, "stale": list(test_database.dropped_stale)}


# -- the fixtures ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def peewee_server(request: pytest.FixtureRequest) -> Iterator[PostgresServer]:
    """The PostgreSQL server that test databases are made on.

    ``--peewee-dsn`` or ``$PEEWEE_ASYNC_TESTING_DSN`` when given (left running), else a throwaway
    server started for the session and removed at its end (under pytest-xdist, one for all workers).
    """
    from .server import DSN_ENV, PostgresServer

    start = request.config.stash.get(SERVER_START, None)
    if start is not None and os.environ.get(DSN_ENV):
        start.stop()  # a conftest.py collected later named a server: that one it is
    elif start is not None:
        try:
            yield start.result()
        finally:
            start.stop()
        return
    workerinput = getattr(request.config, "workerinput", {})
    dsn = request.config.getoption("peewee_dsn") or workerinput.get(WORKER_DSN)
    with PostgresServer(dsn=dsn, **({} if dsn else _server_options(request.config))) as server:
        yield server


@pytest.fixture(scope="session")
def peewee_database(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The app's peewee-async database object, pointed at the session's test database.

    With ``peewee_async_database`` set in the ini file: makes ``test_<name>`` on the server (one per
    pytest-xdist worker), points the object at it, creates the models' tables once, and at the end
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
    from ._database import is_postgres, resolve_database
    from .cleanup import bound_models
    from .testdb import TestDatabase

    configured = _load(spec, config.getini("peewee_async_models"))
    database = resolve_database(configured, purpose=f"peewee_async_database = {spec}", uninitialised=True)
    _remember_engine(config, spec, is_postgres(database))
    start = config.stash.get(SERVER_START, None)
    if start is not None and not is_postgres(database):
        start.stop()  # started for nothing, this once: the next sessions remember
    test_database = TestDatabase(
        database,
        bound_models(database),
        server=request.getfixturevalue("peewee_server") if is_postgres(database) else None,
        module=spec.split(":")[0],
        suffix=config.getoption("peewee_db_suffix") or os.environ.get(SUFFIX_ENV, ""),
        worker=os.environ.get("PYTEST_XDIST_WORKER"),
        reuse=config.getoption("peewee_reuse_db"),
        create=config.getoption("peewee_create_db"),
        drop_stale=config.getoption("peewee_drop_stale") or config.getoption("peewee_create_db"),
    )
    test_database.setup()
    config.stash[TEST_DATABASE] = test_database
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:  # a pytest-xdist worker: the controller prints the closing line
        workeroutput[WORKER_DATABASE] = _describe(test_database)
    try:
        yield configured
    finally:
        test_database.teardown()


@pytest.fixture
def in_transaction(request: pytest.FixtureRequest, peewee_database: Any) -> Iterator[Any]:
    """Run the test inside a :class:`~peewee_async_testing.TransactionTestCase`, rolled back afterwards.

    Yields the case; it opens its connection (``case.connection``) and transaction at the test's
    first query, on the test's own event loop, whatever its loop scope. Tests that cannot run in a
    transaction get ``clear_tables`` instead, and ``None``: synchronous tests, tests that ask for
    ``clear_tables``, and tests marked ``@pytest.mark.peewee_db(isolation="clear")``.
    ``peewee_async_autouse = true`` applies it to every test.
    """
    isolation, options = _isolation(request)
    if isolation == "clear":
        request.getfixturevalue("clear_tables")
        yield None
        return
    from .transaction import TransactionTestCase

    pool = request.getfixturevalue(f"_peewee_pool_{_loop_scope(request.node)}")
    # Where it costs least: an async fixture would cost each test more than its BEGIN and ROLLBACK.
    # So the patches go on here, the transaction opens at the first query, and it is rolled back at the
    # end of the test's own coroutine. A query of a later fixture tear-down opens a new transaction,
    # which this fixture's tear-down rolls back on the test's loop.
    case = TransactionTestCase(peewee_database, **_case_options(request.config, options))
    engine = case.engine(lender=pool, outer=_shared_case(request))
    item, test = request.node, request.node.obj
    engine.patch()

    @functools.wraps(test)
    async def run_in_transaction(*args: Any, **kwargs: Any) -> Any:
        try:
            result = await test(*args, **kwargs)
        except BaseException as error:
            await engine.finish(type(error), error, error.__traceback__)
            raise
        await engine.finish(None, None, None)
        return result

    from ._compat import replaced_test_function

    try:
        with replaced_test_function(item, run_in_transaction):
            yield case
    finally:
        engine.close_on_own_loop()


@pytest.fixture
def clear_tables(request: pytest.FixtureRequest, peewee_database: Any) -> Iterator[None]:
    """Empty the tables the test wrote to, after the test.

    For tests whose queries cannot run inside the test transaction: synchronous peewee queries, code
    that commits. Works for sync and async tests alike. The test's statements, async and sync, are
    watched, and only the tables they wrote to are emptied (all of them after a statement that cannot
    be read, such as DDL): on PostgreSQL in one round trip, children first. As with ``in_transaction``,
    ids keep growing from test to test; ``@pytest.mark.peewee_db(reset_sequences=True)`` restarts the
    emptied tables' sequences too. Writes made outside the database object (another process, another
    connection) are not seen: clear those with ``aio_clear_tables(database)``.
    """
    from .cleanup import WriteTracker

    _, options = _isolation(request)  # the marker's mistakes fail the test, as with in_transaction
    sequences = bool(options.get("reset_sequences", False))
    pool = request.getfixturevalue(f"_peewee_pool_{_loop_scope(request.node)}") if _is_async(request.node) else None
    if pool is None:
        request.getfixturevalue("_peewee_sync_connection")
    models = request.getfixturevalue("_peewee_models")
    with WriteTracker(peewee_database) as tracker:
        yield
    if pool is None:
        tracker.clear(models, sequences=sequences)
    elif tracker.written(models):
        pool.loop.run_until_complete(tracker.aio_clear(models, sequences=sequences))


@pytest.fixture(scope="session")
def _peewee_models(peewee_database: Any) -> list[Any]:
    """The models bound to the database, found once for the session's ``clear_tables``."""
    from .cleanup import bound_models

    return bound_models(peewee_database)


@pytest.fixture(scope="session")
def _peewee_sync_connection(peewee_database: Any) -> Iterator[None]:
    """peewee's synchronous connection, kept open for the session's ``clear_tables`` of sync tests."""
    from ._database import resolve_database

    database = resolve_database(peewee_database, purpose="clear_tables")
    database.connect(reuse_if_open=True)
    yield
    database.close()


def _pool_fixture(scope: LoopScope) -> Any:
    """A pool for the event loop of loop scope ``scope``, closed before that loop ends."""

    @pytest_asyncio.fixture(scope=scope, loop_scope=scope, name=f"_peewee_pool_{scope}")
    async def pool(peewee_database: Any) -> AsyncIterator[LoopPool]:
        from ._database import resolve_database
        from .pools import pool_on_running_loop

        async with pool_on_running_loop(resolve_database(peewee_database, purpose="peewee_database")) as pool:
            yield pool

    return pool


for _scope in LOOP_SCOPES if pytest_asyncio is not None else ():
    globals()[f"_peewee_pool_{_scope}"] = _pool_fixture(_scope)


def _shared_fixtures(scope: LoopScope) -> Any:
    """``peewee_<scope>_transaction``, and its async variants for each loop scope that outlives ``scope``."""

    def shared(request: pytest.FixtureRequest, peewee_database: Any) -> Any:
        loop = _loop_scope(request.node)
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

        case = TransactionTestCase(peewee_database, **_case_options(request.config, _marker_options(request.node)))
        engine = case.engine(outer=_shared_case(request, inside=scope))
        engine.patch()
        try:
            await engine.connection()
            yield case
        finally:
            await engine.close(None, None, None)

    return shared


for _scope in SHARED_SCOPES:
    globals()[f"peewee_{_scope}_transaction"] = _shared_fixtures(_scope)
    for _loop in LOOP_SCOPES[LOOP_SCOPES.index(_scope) :] if pytest_asyncio is not None else ():
        globals()[f"_peewee_shared_{_scope}_{_loop}"] = _shared_loop_fixture(_scope, _loop)


# -- helpers -------------------------------------------------------------------------------------------------------


def _shared_case(request: pytest.FixtureRequest, inside: LoopScope | None = None) -> Any:
    """The case of the narrowest ``peewee_<scope>_transaction`` the test uses (wider than ``inside``), or None:
    the one to nest in. (Already set up: pytest sets up wider scopes first.)"""
    scopes = SHARED_SCOPES if inside is None else SHARED_SCOPES[SHARED_SCOPES.index(inside) + 1 :]
    names = [f"peewee_{scope}_transaction" for scope in scopes]
    return next((request.getfixturevalue(name) for name in names if name in request.fixturenames), None)


def _load(spec: str, model_modules: list[str]) -> Any:
    """Import the model modules and return the object named by ``module:attribute``."""
    module_name, attribute = spec.split(":")
    for name in [module_name, *model_modules]:
        try:
            importlib.import_module(name)
        except ImportError as error:
            pytest.fail(f"peewee-async-testing cannot import {name!r}, named in the ini file: {error}", pytrace=False)
    obj: Any = importlib.import_module(module_name)
    try:
        for part in attribute.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        pytest.fail(
            f"peewee_async_database = {spec}: module {module_name!r} has no attribute {attribute!r}.", pytrace=False
        )
    return obj


def _is_async(item: pytest.Item) -> bool:
    return isinstance(item, pytest.Function) and inspect.iscoroutinefunction(item.obj)


def _loop_scope(item: pytest.Item) -> str:
    from ._compat import loop_scope

    return loop_scope(item)


def _first_function_scoped(item: pytest.Function) -> int:
    """Where function-scoped fixtures start in ``item.fixturenames`` (pytest orders them by scope)."""
    from ._compat import fixture_scope

    for index, name in enumerate(item.fixturenames):
        if fixture_scope(item, name) == "function":
            return index
    return len(item.fixturenames)


def _marker_options(node: pytest.Item | pytest.Collector) -> dict[str, Any]:
    marker = node.get_closest_marker("peewee_db")
    options = dict(marker.kwargs) if marker else {}
    unknown = sorted(set(options) - set(MARKER_OPTIONS))
    if unknown:
        pytest.fail(f"peewee_db marker: unknown option(s) {', '.join(unknown)}; valid: {', '.join(MARKER_OPTIONS)}.")
    wrong = [name for name in CASE_OPTIONS if name in options and not isinstance(options[name], bool)]
    if wrong:
        pytest.fail(f"peewee_db marker: {', '.join(wrong)} must be True or False.")
    return options


def _case_options(config: pytest.Config, marker: dict[str, Any]) -> dict[str, bool]:
    """TransactionTestCase's options: the ini default, then the closest marker's."""
    options = {"allow_transactions": bool(config.getini("peewee_async_allow_transactions"))}
    options.update({name: marker[name] for name in CASE_OPTIONS if name in marker})
    return options


def _isolation(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """How to isolate this test ("transaction" or "clear"), and the closest ``peewee_db`` marker's options."""
    options = _marker_options(request.node)
    isolation = options.get("isolation", "transaction")
    if isolation not in ISOLATIONS:
        pytest.fail(f"peewee_db marker: isolation={isolation!r} is not one of: {', '.join(map(repr, ISOLATIONS))}.")
    if "clear_tables" in request.fixturenames:
        return "clear", options
    if not _is_async(request.node):
        if "isolation" in options and isolation == "transaction":
            pytest.fail(
                "peewee_db(isolation='transaction') needs an async test: a synchronous test's queries use "
                "their own connection and cannot see a test transaction. Use isolation='clear'."
            )
        return "clear", options
    return str(isolation), options
