"""How the plugin is found and set up: its entry point, its documented fixtures, inert until configured,
and the errors of a configuration that is wrong or incomplete."""

from __future__ import annotations

import importlib.metadata

import pytest

from peewee_async_testing import PostgresServer

from .project import make_ini


def test_the_plugin_is_registered_under_its_entry_point() -> None:
    (entry,) = [e for e in importlib.metadata.entry_points(group="pytest11") if e.name == "peewee_async_testing"]
    assert entry.value == "peewee_async_testing.plugin"


def test_the_fixtures_are_documented(pytester: pytest.Pytester) -> None:
    make_ini(pytester, extra="")
    result = pytester.runpytest("--fixtures")
    for fixture, doc in [
        ("in_transaction", "*Run the test inside a*TransactionTestCase*"),
        ("clear_tables", "*Empty the tables the test wrote to, after the test.*"),
        ("peewee_database", "*The app's peewee-async database object, pointed at the session's test database.*"),
        ("peewee_server", "*The server that test databases are made on: a PostgreSQL server, or for a MySQL*"),
        ("peewee_module_transaction", "*A transaction around the whole module, for data its tests share*"),
    ]:
        result.stdout.fnmatch_lines([f"{fixture}* -- *peewee_async_testing/fixtures.py:*", doc])


def test_unconfigured_the_plugin_changes_nothing(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    make_ini(pytester, extra="")
    monkeypatch.setenv("PEEWEE_ASYNC_TESTING_DSN", "postgresql://nobody@127.0.0.1:1/none")  # a server would fail
    pytester.makepyfile(
        """
        import sys

        def test_sync(request):
            assert not {"in_transaction", "clear_tables", "peewee_database"} & set(request.fixturenames)

        async def test_async(request):
            assert not {"in_transaction", "clear_tables", "peewee_database"} & set(request.fixturenames)
            assert "peewee_async_testing.server" not in sys.modules
        """
    )
    result = pytester.runpytest_subprocess()  # a fresh interpreter: nothing of the library imported yet
    result.assert_outcomes(passed=2)
    assert "peewee-async-testing:" not in result.stdout.str()  # no header, no test database


def test_without_a_database_the_error_says_what_to_add(inner: pytest.Pytester) -> None:
    make_ini(inner, extra="")
    inner.makepyfile("async def test_needs_db(in_transaction):\n    pass\n")
    result = inner.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "The in_transaction fixture needs a peewee-async database, but none is configured. "
            'Set `peewee_async_database = "myapp.db:database"` *',
            "    def peewee_database():",
        ]
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("peewee_async_database = app.db.database", "*is not of the form package.module:attribute*"),
        (
            "peewee_async_server_settings =\n    fsync = on\n    work_mem 3MB",
            "peewee_async_server_settings: 'work_mem 3MB' is not a setting of the form `name = value` *",
        ),
    ],
)
def test_configuration_mistakes_are_usage_errors(pytester: pytest.Pytester, extra: str, message: str) -> None:
    make_ini(pytester, extra=extra)
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


def test_a_database_that_cannot_be_imported_is_named(inner: pytest.Pytester) -> None:
    make_ini(inner, extra="peewee_async_database = app.nowhere:database")
    inner.makepyfile("async def test_x(in_transaction):\n    pass\n")
    result = inner.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: peewee-async-testing cannot import 'app.nowhere', named in the ini file*"])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("app.db:nowhere", "peewee_async_database = app.db:nowhere: module 'app.db' has no attribute 'nowhere'."),
        ("app.db:os", "peewee_async_database = app.db:os needs a peewee-async database *"),
    ],
)
def test_a_wrong_database_object_is_said_once(inner: pytest.Pytester, spec: str, message: str) -> None:
    make_ini(inner, extra=f"peewee_async_database = {spec}")
    inner.makepyfile("\n".join(f"async def test_{n}(in_transaction):\n    pass\n" for n in range(3)))
    result = inner.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert (result.stdout.str() + result.stderr.str()).count(spec) == 1


def test_a_dsn_libpq_cannot_use_is_said_once_before_any_worker_starts(inner: pytest.Pytester) -> None:
    inner.makepyfile("\n".join(f"async def test_{n}(in_transaction):\n    pass\n" for n in range(4)))
    result = inner.runpytest("-n", "2", "--peewee-dsn", "postgresql://app:secret@127.0.0.1:notaport/postgres")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --peewee-dsn (postgresql://app:***@127.0.0.1:notaport/postgres) has a port*"])
    assert (result.stdout.str() + result.stderr.str()).count("notaport") == 1


def test_a_dsn_naming_the_app_database_itself_is_a_usage_error(
    inner: pytest.Pytester, pg_server: PostgresServer
) -> None:
    """The test databases are made from the database a DSN names: naming the app's own there would connect to it."""
    inner.makepyfile("async def test_it(in_transaction):\n    pass\n")
    head, _, query = pg_server.dsn.partition("?")
    assert head.endswith("/postgres")
    dsn = head.removesuffix("/postgres") + "/app" + (f"?{query}" if query else "")
    result = inner.runpytest("--peewee-dsn", dsn)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --peewee-dsn names the database 'app', which your database object*"])
