"""The pytest plugin, registered through the ``pytest11`` entry point ``peewee_async_testing``: its hooks.

Options, ini settings, the ``peewee_db`` marker's registration, the early server start, the report lines;
the fixtures live in :mod:`~peewee_async_testing.fixtures`, the marker's checks in
:mod:`~peewee_async_testing.markers`. Inert until configured: nothing autouses and no server starts unless
the ini file names a database, a test carries the marker, or a test asks for a fixture.
"""

from __future__ import annotations

import collections
import contextlib
import functools
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from . import access
from .markers import is_async, plan, requested_isolation
from .state import (
    GATE,
    SERVER_START,
    SUFFIX_ENV,
    TEST_DATABASE,
    WORKER_DATABASE,
    WORKER_DATABASES,
    WORKER_DSN,
    describe,
    server_options,
)

try:
    import pytest_asyncio
except ImportError:  # installed without the [pytest] extra: inert, and says so once configured
    pytest_asyncio = None  # type: ignore[assignment]
else:
    from .fixtures import *  # noqa: F403 - the fixtures, where pytest looks for them: on the plugin module
    from .fixtures import CLEARS_WITH, POOL, clears_with, pool_name, scoped_name


#: pytest's options for sessions that run no test: no server for them.
NO_TESTS_RUN = ("collectonly", "showfixtures", "show_fixtures_per_test", "setupplan")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("peewee-async-testing", "peewee-async test databases")
    group.addoption(
        "--peewee-dsn",
        metavar="URL",
        help="server to make the test database on, as postgresql://user:password@host:port/dbname, or "
        "mysql://user:password@host:port/ for a MySQL database (default: $PEEWEE_ASYNC_TESTING_DSN, for MySQL "
        "$PEEWEE_ASYNC_TESTING_MYSQL_DSN first, else a throwaway server of the database's kind started for the run)",
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
        "--peewee-no-migrations",
        action="store_false",
        dest="peewee_migrations",
        default=True,
        help="build the test database from the models, not with peewee_async_migrations or the "
        "pytest_peewee_async_setup_database hook",
    )
    group.addoption(
        "--peewee-migrations",
        action="store_true",
        dest="peewee_migrations",
        help="build it with the migrations or the hook after all (undoes --peewee-no-migrations given in addopts)",
    )
    group.addoption(
        "--peewee-migration-tests",
        action="store_true",
        help="add the ready-made migration tests to the session (as peewee_async_migration_tests = true does)",
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
        "peewee_async_migrations",
        "build the test database with the peewee-migrate migrations of this folder (relative to the ini file) "
        "instead of the models' tables",
        default="",
    )
    parser.addini(
        "peewee_async_sql",
        "SQL files (relative to the ini file) run on the test database before its tables are made: extensions, "
        "functions",
        type="args",
    )
    parser.addini(
        "peewee_async_migration_tests",
        "add the ready-made migration tests to the session: each migration applies, rolls back and applies again "
        "leaving the schema as it was, the schema after them matches the models, every model is registered",
        type="bool",
        default=False,
    )
    parser.addini(
        "peewee_async_models_package",
        "the package whose models the ready-made migration tests expect all registered (default: the top package "
        "of peewee_async_database's module)",
        default="",
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
        "peewee_async_autosavepoint",
        "run every statement of a test under its own savepoint, so that the test goes on after a database error",
        type="bool",
        default=False,
    )
    parser.addini(
        "peewee_async_reset_sequences",
        "reset the sequences at each test's start, so that ids are the same on every run",
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
        "the throwaway server's extra settings (postgresql.conf's, or mariadbd's options), one `name = value` "
        "per line (default for PostgreSQL: $PEEWEE_ASYNC_TESTING_PG_SETTINGS)",
        type="linelist",
    )


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hooks

    pluginmanager.add_hookspecs(hooks)


#: Until the gate is on: every database of the process refuses to connect (set while the conftests load).
EARLY_REFUSAL = pytest.StashKey[ExitStack]()


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> Iterator[None]:
    """A conftest.py may import the app, which may query as it is imported: from the first conftest on, no
    database may connect, until the gate is on the configured one (in :func:`pytest_configure`)."""
    if not early_config.getini("peewee_async_database"):
        return (yield)
    from .gate import refuse_all

    stack = early_config.stash[EARLY_REFUSAL] = ExitStack()
    stack.enter_context(refuse_all("a conftest.py"))
    return (yield)


@pytest.hookimpl(tryfirst=True)  # the gate goes on before any conftest's pytest_configure runs
def pytest_configure(config: pytest.Config) -> None:
    try:
        _configure(config)
    finally:
        early = config.stash.get(EARLY_REFUSAL, None)
        if early is not None:
            early.close()


def _configure(config: pytest.Config) -> None:
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
    if spec and (pytest_asyncio is None or not config.pluginmanager.has_plugin("asyncio")):
        raise pytest.UsageError(
            f"peewee_async_database = {spec} is set, but pytest-asyncio is not installed (or disabled with "
            "-p no:asyncio), and the plugin runs the tests' event loops through it. Install the plugin's extra: "
            "pip install 'peewee-async-testing[pytest]'."
        )
    if spec:
        _check_options(config)
    if spec or config.getini("peewee_async_server_settings"):  # a mistake is said once, before any test
        from .exceptions import ConfigurationError
        from .settings import environment_settings

        try:
            server_options(config)
            environment_settings()
        except ConfigurationError as error:
            raise pytest.UsageError(str(error)) from None
    if spec:
        access.configure_database(config, spec)
        _check_dsn(config)
        _check_mariadb_settings(config)
    if _asks_for_migration_tests(config):
        from .migration_tests import switch_on

        config.pluginmanager.register(switch_on(config), MIGRATION_TESTS)


def _check_mariadb_settings(config: pytest.Config) -> None:
    """Refuse, before any test, the ini's settings that a throwaway MariaDB server would refuse as it starts."""
    from .servers import kind_of

    settings = server_options(config)["settings"]
    if settings and kind_of(config.stash[GATE].database) == "mysql":
        from .exceptions import ConfigurationError
        from .mariadb import checked_settings

        try:
            checked_settings(settings, "peewee_async_server_settings")
        except ConfigurationError as error:
            raise pytest.UsageError(str(error)) from None


#: The name the ready-made migration tests' collecting hooks are registered under, once switched on.
MIGRATION_TESTS = "peewee-async-testing-migration-tests"


def _asks_for_migration_tests(config: pytest.Config) -> bool:
    """Whether the ini file or the command line switches the ready-made migration tests on."""
    try:
        ini = bool(config.getini("peewee_async_migration_tests"))
    except (ValueError, pytest.UsageError) as error:  # (pytest 8 raises the one, pytest 9 the other)
        raise pytest.UsageError(f"peewee_async_migration_tests: {error}: give true or false.") from None
    return ini or bool(config.getoption("peewee_migration_tests"))


def _check_options(config: pytest.Config) -> None:
    """The ini file's TransactionTestCase options, read once: one that is not a boolean is said before any test."""
    from .markers import ini_options

    try:
        ini_options(config)
    except (ValueError, pytest.UsageError) as error:  # (pytest 8 raises the one, pytest 9 the other)
        raise pytest.UsageError(
            f"peewee-async-testing: {error} in peewee_async_allow_transactions, peewee_async_autosavepoint or "
            "peewee_async_reset_sequences: give true or false."
        ) from None


def _check_dsn(config: pytest.Config) -> None:
    """Read the DSN given so far, so that one the session cannot use (of the other kind of server than the
    configured database's, that its driver cannot read, or naming the app's database itself) is said once, before
    any test (and any worker)."""
    from .dsn import hide
    from .exceptions import ConfigurationError
    from .servers import from_environment, given_server, kind_of

    gate = config.stash[GATE]
    kind = kind_of(gate.database)
    if kind is None:
        return  # SQLite: no server, whatever is given
    given = config.getoption("peewee_dsn")
    dsn, origin = (hide(given), "--peewee-dsn") if given else from_environment(kind) or (None, None)
    if dsn is None or origin is None:
        return
    try:
        given_server(kind, dsn, origin, gate.database, gate.spec)
    except ConfigurationError as error:
        raise pytest.UsageError(str(error)) from None


def pytest_report_header(config: pytest.Config) -> str | None:
    spec = config.getini("peewee_async_database")
    if not spec:
        return None
    autouse = "on" if config.getini("peewee_async_autouse") else "off"
    return f"peewee-async-testing: database {spec}, autouse {autouse}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Once a database is configured: make the test database before anything else of a test (so fixtures of any
    scope reach it, not the real one), isolate the tests that carry the marker (every test with
    ``peewee_async_autouse = true``), and give the tests a pool on their event loop, closed with it."""
    if GATE not in config.stash:
        return
    from ._compat import add_fixture

    autouse = config.getini("peewee_async_autouse")
    ready_made: tuple[type[pytest.Item], ...] = ()  # the migration tests: each makes a scratch database
    if config.pluginmanager.has_plugin(MIGRATION_TESTS):
        from .migration_tests import MigrationTest

        ready_made = (MigrationTest,)
    # The cases of a parametrized test share one fixture closure, which the first case's set-up here changes: what
    # the test asked for is read from it before that, once, and the isolation put in it must serve every case.
    cases = collections.Counter(id(item.fixturenames) for item in items if isinstance(item, pytest.Function))
    asked_by_closure: dict[int, bool] = {}
    for item in items:
        if not isinstance(item, pytest.Function) or isinstance(item, ready_made):
            continue
        names = item.fixturenames
        asked = asked_by_closure.setdefault(id(names), "peewee_database" in names)
        if asked:  # asked for by the test: it takes the database as it is
            item.stash[access.ASKED] = True
        if names[:1] != ["peewee_database"]:
            if "peewee_database" in names:
                names.remove("peewee_database")
            add_fixture(item, "peewee_database", 0)
        if access.is_unittest(item):
            continue  # AioDatabaseTestCase isolates itself, on a loop and pool of its own
        # The isolation goes first among the function-scoped fixtures, asked for or not: a fixture set up before
        # it would write outside the transaction (or before clear_tables looks).
        chosen = next((name for name in ("clear_tables", "in_transaction") if name in names), None)
        if chosen is not None:
            names.remove(chosen)
        elif autouse or item.get_closest_marker("peewee_db") is not None:
            # clear_tables straight away where in_transaction would only hand over to it (one fixture less), but not
            # for the cases of an async parametrized test: in_transaction serves them all, each as its own marks say.
            isolation = requested_isolation(item)
            alone = cases[id(names)] == 1 or not is_async(item)
            clears = (isolation == "clear" and alone) or (isolation is None and not is_async(item))
            chosen = "clear_tables" if clears else "in_transaction"
        if chosen is not None:
            add_fixture(item, chosen, _first_function_scoped(item))
            with contextlib.suppress(pytest.fail.Exception):  # now, not as each test sets up (a mistake fails it there)
                plan(item)
        # The session's pool first: fixtures of wider scope that use the database run on the session's loop.
        # A test that asks for the database gets its own loop's pool next; in_transaction and clear_tables
        # ask for theirs as they set up (so that they end before it).
        own = item.stash[POOL] = pool_name(item)
        pools = [pool_name(item, "session"), own] if asked and is_async(item) else [pool_name(item, "session")]
        for position, pool in enumerate(dict.fromkeys(pools), start=1):
            add_fixture(item, pool, position)
        if chosen is not None:  # what in_transaction and clear_tables ask for as they set up: found once, here
            item.stash[CLEARS_WITH] = clears_with(item)
            for name in (own, *item.stash[CLEARS_WITH], "_peewee_tables", "_peewee_clear_carry"):
                add_fixture(item, name, None)
        if chosen == "in_transaction":  # kept on the database from the first such test on, after the database
            add_fixture(item, scoped_name(item, "_peewee_stand_ins"), 1)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    gate = item.config.stash.get(GATE, None)
    if gate is not None and isinstance(item, pytest.Function) and access.is_unittest(item):
        access.check_test_case(item.cls, gate)
    with access.window(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    with access.window(item) as isolated:
        if isolated:
            access.check_bindings(item.config)
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    with access.window(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fixture of wider scope than the function reaches the test database, in its set-up and its tear-down,
    whichever test sets it up (unittest's class and module set-up only for an AioDatabaseTestCase).

    A ``peewee_database`` fixture of the user's own is in charge of where the object points: the gate then
    refuses the configured database alone."""
    gate = request.config.stash.get(GATE, None)
    if gate is not None and fixturedef.argname == "peewee_database" and fixturedef.func.__module__ != access.FIXTURES:
        gate.overridden = True
    if gate is None or fixturedef.scope == "function" or access.unittest_set_up(fixturedef, request):
        return (yield)
    from .pools import give_back_kept

    # Its set-up and tear-down may take connections from a loop's pool, which may hold only one: the one a loop
    # keeps for its test transactions goes back first (not before the plugin's own pools).
    own_pool = fixturedef.argname.startswith("_peewee_pool_")
    if not own_pool:
        give_back_kept()
    fixturedef.addfinalizer(gate.pop)  # finalizers run last first: these frame the fixture's own tear-down
    try:
        with gate.refusing(None):
            return (yield)
    finally:
        fixturedef.addfinalizer(functools.partial(gate.push, None))
        if not own_pool:
            fixturedef.addfinalizer(give_back_kept)


def _starts_a_server(config: pytest.Config) -> bool:
    """Whether the session needs a throwaway server: a database is configured that needs one (not SQLite), no
    server is given, and this is not a pytest-xdist worker (the controller starts one for all)."""
    gate = config.stash.get(GATE, None)
    if gate is None or config.getoption("peewee_dsn") or hasattr(config, "workerinput"):
        return False  # (and nothing imported: unconfigured, the plugin costs nothing)
    from .servers import from_environment, kind_of

    kind = kind_of(gate.database)
    return kind is not None and from_environment(kind) is None


def _start_server(config: pytest.Config) -> None:
    """Start, in a thread, the throwaway server of the configured database's kind."""
    from .background_start import BackgroundStart
    from .servers import kind_of, make_server

    kind = kind_of(config.stash[GATE].database)
    assert kind is not None
    config.stash[SERVER_START] = BackgroundStart(make_server(kind, **server_options(config)))


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if not any(getattr(config.option, name, False) for name in NO_TESTS_RUN) and _starts_a_server(config):
        _start_server(config)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist controller: let every worker make its database on the one throwaway server started here.

    So the workers clone one template, and start no server of their own.
    """
    config = node.config
    if SERVER_START not in config.stash:
        if not _starts_a_server(config):
            return
        _start_server(config)
    from .exceptions import PeeweeAsyncTestingError

    try:
        node.workerinput[WORKER_DSN] = str(config.stash[SERVER_START].result().dsn)  # (plain: execnet sends it)
    except PeeweeAsyncTestingError as error:  # said once, here, instead of an INTERNALERROR (or one per worker)
        pytest.exit(f"peewee-async-testing: {error}", returncode=pytest.ExitCode.USAGE_ERROR)


def pytest_unconfigure(config: pytest.Config) -> None:
    start = config.stash.get(SERVER_START, None)
    try:
        if start is not None:
            start.stop()
    finally:
        gate = config.stash.get(GATE, None)
        if gate is not None:
            gate.uninstall()


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
    described = [describe(test_database)] if test_database is not None else config.stash.get(WORKER_DATABASES, [])
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
    kept = sorted({name for database in described for name in database.get("kept", [])})
    if lines and kept:  # met where stale ones are, and left alone: each with why
        lines[-1] += f"; kept: {', '.join(kept)}"
    for line in lines:
        terminalreporter.write_line(line)


def _first_function_scoped(item: pytest.Function) -> int:
    """Where function-scoped fixtures start in ``item.fixturenames`` (pytest orders them by scope), after the
    test database."""
    from ._compat import fixture_scope

    for index, name in enumerate(item.fixturenames[1:], start=1):
        if fixture_scope(item, name) in ("function", None):
            return index
    return len(item.fixturenames)
