"""The pytest plugin, driven end to end: real inner pytest sessions (pytester) on the real server.

The inner project is a small app whose database object points at a real database, ``app``, holding
a sentinel row: the plugin must make ``test_app`` next to it and never touch ``app`` itself.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest

from peewee_async_testing import PostgresServer

INI = """
[pytest]
asyncio_mode = {mode}
asyncio_default_fixture_loop_scope = {loop}
asyncio_default_test_loop_scope = {loop}
filterwarnings = error
addopts = --strict-markers -p no:cacheprovider
pythonpath = .
{extra}
"""

APP_DB = """
import os

import peewee_async

database = peewee_async.PostgresqlDatabase(
    "app", host=os.environ["INNER_HOST"], port=int(os.environ["INNER_PORT"]), user="postgres"
)
"""

APP_MODELS = """
import peewee
import peewee_async

from app.db import database


class Note(peewee_async.AioModel):
    text = peewee.CharField(unique=True)

    class Meta:
        database = database


class Comment(peewee_async.AioModel):
    note = peewee.ForeignKeyField(Note, backref="comments")

    class Meta:
        database = database
"""

CONFIGURED = """
peewee_async_database = app.db:database
peewee_async_models = app.models
"""


def admin(server: PostgresServer, sql: str, params: tuple[Any, ...] = (), database: str = "postgres") -> list[Any]:
    connection = psycopg2.connect(**server.connect_params(database))
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


def databases(server: PostgresServer) -> set[str]:
    return {name for (name,) in admin(server, "SELECT datname FROM pg_database")}


@pytest.fixture
def app_database(pg_server: PostgresServer) -> Iterator[str]:
    """The inner app's configured database: real, with a sentinel row the plugin must leave alone."""
    admin(pg_server, "CREATE DATABASE app")
    admin(pg_server, "CREATE TABLE note (id serial PRIMARY KEY, text varchar(255) UNIQUE)", database="app")
    admin(pg_server, "INSERT INTO note (text) VALUES ('sentinel')", database="app")
    yield "app"
    assert admin(pg_server, "SELECT text FROM note", database="app") == [("sentinel",)], "the app database was touched"
    left = {name for name in databases(pg_server) if name.startswith("test_app")}
    for name in left | {"app"}:
        admin(pg_server, f'DROP DATABASE "{name}" WITH (FORCE)')
    assert not left, f"the inner run left test databases behind: {left}"


@pytest.fixture
def inner(
    pytester: pytest.Pytester, pg_server: PostgresServer, app_database: str, monkeypatch: pytest.MonkeyPatch
) -> pytest.Pytester:
    """A pytester project holding the app; inner runs make their test databases on this run's server."""
    pytester.mkpydir("app")
    pytester.path.joinpath("app", "db.py").write_text(APP_DB)
    pytester.path.joinpath("app", "models.py").write_text(APP_MODELS)
    pytester.syspathinsert()
    make_ini(pytester)
    monkeypatch.setenv("INNER_HOST", pg_server.host)
    monkeypatch.setenv("INNER_PORT", str(pg_server.port))
    monkeypatch.setenv("PEEWEE_ASYNC_TESTING_DSN", pg_server.dsn)
    monkeypatch.delenv("PEEWEE_ASYNC_TESTING_DB_SUFFIX", raising=False)
    return pytester


@pytest.fixture(autouse=True)
def _not_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner sessions are not workers of this run, even when this run uses pytest-xdist."""
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)


def make_ini(pytester: pytest.Pytester, extra: str = CONFIGURED, *, loop: str = "session", mode: str = "auto") -> None:
    pytester.makeini(INI.format(extra=extra, loop=loop, mode=mode))


ISOLATED_TESTS = """
import pytest
from app.models import Note

async def test_one():
    await Note.aio_create(text="same")
    assert await Note.select().aio_count() == 1

async def test_two_sees_nothing_of_one():
    assert await Note.select().aio_count() == 0
    await Note.aio_create(text="same")  # unique: fails if test_one's row survived

async def test_a_crash():
    await Note.aio_create(text="crash")
    raise RuntimeError("boom")

async def test_the_crash_left_nothing():
    assert await Note.select().aio_count() == 0
"""


# -- registration and the inert default ----------------------------------------------------------------------------


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
        ("peewee_server", "*The PostgreSQL server that test databases are made on.*"),
        ("peewee_module_transaction", "*A transaction around the whole module, for data its tests share*"),
    ]:
        result.stdout.fnmatch_lines([f"{fixture}* -- *peewee_async_testing/plugin.py*", doc])


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
            "peewee_async_server_settings: 'work_mem 3MB' is not a PostgreSQL setting of the form `name = value` *",
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
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*peewee-async-testing cannot import 'app.nowhere', named in the ini file*"])


# -- configuration by ini: the test database's lifecycle -----------------------------------------------------------


def test_autouse_isolates_every_test_on_a_test_database(inner: pytest.Pytester, pg_server: PostgresServer) -> None:
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makepyfile(
        test_names="""
        from app.db import database

        def test_the_database_object_points_at_the_test_database():
            assert database.database == "test_app"
        """,
        test_isolated=ISOLATED_TESTS,
    )
    result = inner.runpytest()
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(
        [
            "peewee-async-testing: database app.db:database, autouse on",
            "*RuntimeError: boom*",
            f"peewee-async-testing: test database test_app on 127.0.0.1:{pg_server.port} (created, dropped)",
        ]
    )
    assert "test_app" not in databases(pg_server)


def test_fixture_data_and_fixture_tear_downs_are_isolated_too(inner: pytest.Pytester) -> None:
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makepyfile(
        """
        import pytest
        from app.models import Note

        @pytest.fixture
        async def note():
            note = await Note.aio_create(text="from a fixture")  # inside the test's transaction
            yield note
            await Note.aio_create(text="from a tear-down")  # after it: in one of its own, rolled back too

        async def test_uses_the_fixture(note):
            assert [n.text for n in await Note.select().aio_execute()] == ["from a fixture"]

        async def test_nothing_survived():
            assert await Note.select().aio_count() == 0
        """
    )
    inner.runpytest().assert_outcomes(passed=2)


def test_without_autouse_only_marked_tests_are_isolated(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest
        from app.models import Note

        async def test_unisolated_write(peewee_database):
            await Note.aio_create(text="kept")

        async def test_so_the_next_test_sees_it(peewee_database):
            assert await Note.select().aio_count() == 1

        @pytest.mark.peewee_db
        async def test_marked_writes():
            await Note.aio_create(text="rolled back")

        async def test_the_marked_write_is_gone(peewee_database):
            assert [n.text for n in await Note.select().aio_execute()] == ["kept"]
        """
    )
    inner.runpytest().assert_outcomes(passed=4)


def test_the_database_object_is_restored_after_the_session(inner: pytest.Pytester) -> None:
    inner.makeconftest(
        """
        from app.db import database

        BEFORE = (database.database, dict(database.connect_params), database.pool_backend)

        def pytest_sessionfinish(session):  # after every fixture is torn down
            after = (database.database, dict(database.connect_params), database.pool_backend)
            restored = after[:2] == BEFORE[:2] and after[2] is BEFORE[2]
            session.config.rootpath.joinpath("restored").write_text(str(restored))
        """
    )
    inner.makepyfile(
        """
        import pytest
        from app.db import database

        @pytest.mark.peewee_db
        async def test_pointed():
            assert database.database == "test_app"
        """
    )
    inner.runpytest().assert_outcomes(passed=1)
    assert inner.path.joinpath("restored").read_text() == "True"


@pytest.mark.parametrize("loop", ["function", "session"])
def test_marker_choices_per_test_class_and_module(inner: pytest.Pytester, loop: str) -> None:
    make_ini(inner, loop=loop)
    inner.makepyfile(
        test_clear="""
        import pytest
        from app.db import database
        from app.models import Note

        pytestmark = pytest.mark.peewee_db(isolation="clear")

        def sync_texts():
            with database.allow_sync():
                return [note.text for note in Note.select()]

        async def test_committed_rows_are_visible_to_sync_code(in_transaction):
            assert in_transaction is None
            await Note.aio_create(text="committed")
            assert sync_texts() == ["committed"]

        def test_sync_tests_are_cleared_too():
            assert sync_texts() == []
            with database.allow_sync():
                Note.create(text="sync")

        def test_and_cleared_after():
            assert sync_texts() == []
        """,
        test_transaction="""
        import pytest
        from app.models import Note

        @pytest.mark.peewee_db(isolation="transaction")
        class TestInTransactions:
            async def test_one(self, in_transaction):
                assert in_transaction.connection is None  # opened by the first query
                await Note.aio_create(text="x")
                assert in_transaction.connection is not None

            async def test_two(self):
                assert await Note.select().aio_count() == 0
                await Note.aio_create(text="x")
        """,
    )
    inner.runpytest().assert_outcomes(passed=5)


def test_marker_options_reach_the_transaction(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import peewee
        import pytest
        from app.db import database
        from app.models import Note

        @pytest.mark.peewee_db(autosavepoint=True, reset_sequences=True)
        async def test_goes_on_after_an_integrity_error():
            note = await Note.aio_create(text="x")
            assert note.id == 1
            with pytest.raises(peewee.IntegrityError):
                await Note.aio_create(text="x")
            assert await Note.select().aio_count() == 1

        @pytest.mark.peewee_db(reset_sequences=True)
        async def test_the_sequence_was_reset():
            assert (await Note.aio_create(text="y")).id == 1

        @pytest.mark.peewee_db(allow_transactions=True)
        async def test_app_transactions():
            async with database.aio_transaction():
                await Note.aio_create(text="z")

        @pytest.mark.peewee_db
        async def test_refused_by_default():
            with pytest.raises(ValueError, match="allow_transactions=True"):
                async with database.aio_transaction():
                    pass
        """
    )
    inner.runpytest().assert_outcomes(passed=4)


def test_the_ini_lets_app_code_open_transactions(inner: pytest.Pytester) -> None:
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true\npeewee_async_allow_transactions = true")
    inner.makepyfile(
        """
        import pytest
        from app.db import database
        from app.models import Note

        async def test_get_or_create():
            assert (await Note.aio_get_or_create(text="x"))[1]
            assert not (await Note.aio_get_or_create(text="x"))[1]

        async def test_undone():
            assert await Note.select().aio_count() == 0

        @pytest.mark.peewee_db(allow_transactions=False)
        async def test_the_marker_overrides_the_ini():
            with pytest.raises(ValueError):
                async with database.aio_atomic():
                    pass
        """
    )
    inner.runpytest().assert_outcomes(passed=3)


SHARED = """
import pytest
from app.models import Comment, Note


@pytest.fixture(scope="module")
async def note(peewee_module_transaction):
    return await Note.aio_create(text="shared")


async def test_sees_the_shared_note(note):
    assert [n.text for n in await Note.select().aio_execute()] == ["shared"]
    await Comment.aio_create(note=note)
    await Note.update(text="changed").aio_execute()


async def test_changes_of_the_test_before_are_undone(note):
    assert [n.text for n in await Note.select().aio_execute()] == ["shared"]
    assert await Comment.select().aio_count() == 0


@pytest.fixture(scope="class")
async def second(peewee_class_transaction, note):
    return await Note.aio_create(text="class")


class TestAClass:
    async def test_sees_both(self, second):
        assert await Note.select().aio_count() == 2
"""


def test_data_shared_by_a_module_and_a_class(inner: pytest.Pytester) -> None:
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makepyfile(
        test_shared=SHARED,
        test_z_after="""
        from app.models import Note

        async def test_the_module_data_is_gone():
            assert await Note.select().aio_count() == 0
        """,
    )
    inner.runpytest().assert_outcomes(passed=4)


def test_shared_data_on_function_loops_names_the_setting(inner: pytest.Pytester) -> None:
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true", loop="function")
    inner.makepyfile(test_shared=SHARED)
    result = inner.runpytest()
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(["*the tests get a new event loop per function*asyncio_default_test_loop_scope*"])


def test_clear_tables_empties_only_the_tables_the_test_wrote_to(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest
        from app.db import database
        from app.models import Comment, Note

        @pytest.fixture(scope="module")
        async def seed(peewee_database):
            note = await Note.aio_create(text="seed")  # committed: no transaction around it
            yield note
            await Note.delete().aio_execute()

        @pytest.mark.peewee_db(isolation="clear")
        async def test_writes_comments(seed):
            await Comment.aio_create(note=seed)

        @pytest.mark.peewee_db(isolation="clear")
        def test_the_comments_are_gone_the_untouched_notes_are_not(seed):
            with database.allow_sync():
                assert Comment.select().count() == 0
                assert [note.text for note in Note.select()] == ["seed"]
        """
    )
    inner.runpytest().assert_outcomes(passed=2)


def test_a_test_transaction_is_over_for_other_connections_the_moment_the_test_ends(inner: pytest.Pytester) -> None:
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makepyfile(
        """
        from app.db import database
        from app.models import Note

        async def test_writes_a_unique_row():
            await Note.aio_create(text="only once")

        def test_another_connection_writes_it_without_waiting():  # its own connection: clear_tables
            with database.allow_sync():
                database.execute_sql("SET lock_timeout = '2s'")  # fails if the row's transaction were open
                Note.create(text="only once")
        """
    )
    inner.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_a_connection_killed_during_a_test_is_replaced_for_the_next(
    inner: pytest.Pytester, pg_server: PostgresServer
) -> None:
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makepyfile(
        f"""
        import psycopg2
        from peewee_async.databases import fetchall
        from app.db import database
        from app.models import Note

        async def test_loses_its_connection():
            await Note.aio_create(text="lost")
            [(pid,)] = await database.aio_execute_sql("SELECT pg_backend_pid()", fetch_results=fetchall)
            killer = psycopg2.connect({pg_server.dsn!r})
            killer.autocommit = True
            killer.cursor().execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
            killer.close()

        async def test_runs_on_a_fresh_one():
            assert await Note.select().aio_count() == 0
            await Note.aio_create(text="lost")
        """
    )
    inner.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_cleared_ids_go_on_growing_unless_sequences_are_reset(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest
        from app.db import database
        from app.models import Note

        pytestmark = pytest.mark.peewee_db(isolation="clear")

        async def test_first():
            assert (await Note.aio_create(text="a")).id == 1

        async def test_ids_go_on_as_in_a_transaction():
            assert (await Note.aio_create(text="b")).id == 2

        @pytest.mark.peewee_db(isolation="clear", reset_sequences=True)
        def test_restarts_after_itself():
            with database.allow_sync():
                assert Note.create(text="c").id == 3

        async def test_restarted():
            assert (await Note.aio_create(text="d")).id == 1
        """
    )
    inner.runpytest("-p", "no:randomly").assert_outcomes(passed=4)


def test_marker_mistakes_name_the_valid_choices(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest

        @pytest.mark.peewee_db(isolation="truncate")
        async def test_wrong_isolation():
            pass

        @pytest.mark.peewee_db(isolaton="clear")
        async def test_misspelt_option():
            pass

        @pytest.mark.peewee_db(isolation="transaction")
        def test_sync_in_a_transaction():
            pass

        @pytest.mark.peewee_db(autosavepoint="yes")
        async def test_not_a_bool():
            pass

        @pytest.mark.peewee_db(isolation="clear", reset_sequence=True)
        async def test_misspelt_option_of_clear():
            pass
        """
    )
    result = inner.runpytest()
    result.assert_outcomes(errors=5)
    result.stdout.fnmatch_lines_random(
        [
            "*isolation='truncate' is not one of: 'transaction', 'clear'*",
            "*unknown option(s) isolaton; valid: isolation*",
            "*unknown option(s) reset_sequence; valid: isolation*",
            "*needs an async test*Use isolation='clear'*",
            "*autosavepoint must be True or False*",
        ]
    )


def test_loop_scopes_can_be_mixed_in_one_run(inner: pytest.Pytester) -> None:
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true", loop="function")
    inner.makepyfile(
        test_function_loops=ISOLATED_TESTS.replace("raise RuntimeError", "pass  #"),
        test_module_loop="""
        import pytest
        from app.models import Note

        pytestmark = pytest.mark.asyncio(loop_scope="module")

        async def test_module_loop_one():
            await Note.aio_create(text="m")

        async def test_module_loop_two():
            assert await Note.select().aio_count() == 0
        """,
        test_session_loop="""
        import pytest
        from app.models import Note

        @pytest.mark.asyncio(loop_scope="session")
        async def test_session_loop():
            assert await Note.select().aio_count() == 0
            await Note.aio_create(text="s")
        """,
    )
    inner.runpytest().assert_outcomes(passed=7)


def test_strict_mode_works_too(inner: pytest.Pytester) -> None:
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true", mode="strict", loop="function")
    inner.makepyfile(
        """
        import pytest
        from app.models import Note

        @pytest.mark.asyncio
        async def test_one():
            await Note.aio_create(text="x")

        @pytest.mark.asyncio
        async def test_two():
            assert await Note.select().aio_count() == 0
        """
    )
    inner.runpytest().assert_outcomes(passed=2)


def test_reuse_db_keeps_the_database_for_the_next_run(inner: pytest.Pytester, pg_server: PostgresServer) -> None:
    inner.makepyfile(
        """
        import pytest
        from app.models import Note

        @pytest.mark.peewee_db
        async def test_it():
            await Note.aio_create(text="x")
        """
    )
    first = inner.runpytest("--peewee-reuse-db")
    first.assert_outcomes(passed=1)
    first.stdout.fnmatch_lines(["peewee-async-testing: test database test_app on * (created)"])
    oid = admin(pg_server, "SELECT oid FROM pg_database WHERE datname = 'test_app'")
    assert oid, "--peewee-reuse-db dropped the database"

    second = inner.runpytest("--peewee-reuse-db")
    second.assert_outcomes(passed=1)
    second.stdout.fnmatch_lines(["peewee-async-testing: test database test_app on * (reused)"])
    assert admin(pg_server, "SELECT oid FROM pg_database WHERE datname = 'test_app'") == oid

    inner.path.joinpath("app", "models.py").write_text(APP_MODELS.replace("unique=True", "unique=True, null=True"))
    changed = inner.runpytest("--peewee-reuse-db")
    changed.stdout.fnmatch_lines(["peewee-async-testing: test database test_app on * (created)"])

    fresh = inner.runpytest("--peewee-reuse-db", "--peewee-create-db")
    fresh.assert_outcomes(passed=1)
    fresh.stdout.fnmatch_lines(["peewee-async-testing: test database test_app on * (created, dropped)"])
    assert "test_app" not in databases(pg_server)


def test_a_suffix_keeps_runs_that_share_a_server_apart(inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    inner.makepyfile("import pytest\n\n@pytest.mark.peewee_db\nasync def test_x():\n    pass\n")
    inner.runpytest("--peewee-db-suffix", "shard-1").stdout.fnmatch_lines(["*test database test_app_shard_1 on *"])
    monkeypatch.setenv("PEEWEE_ASYNC_TESTING_DB_SUFFIX", "ci7")
    inner.runpytest().stdout.fnmatch_lines(["*test database test_app_ci7 on *"])


def test_drop_stale_removes_what_crashed_runs_left(inner: pytest.Pytester, pg_server: PostgresServer) -> None:
    admin(pg_server, "CREATE DATABASE test_app_crashed")
    admin(pg_server, "CREATE DATABASE test_apple")  # another project's: not ours to drop
    inner.makepyfile("import pytest\n\n@pytest.mark.peewee_db\nasync def test_x():\n    pass\n")
    result = inner.runpytest("--peewee-drop-stale")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*(created, dropped); dropped stale: test_app_crashed"])
    assert "test_app_crashed" not in databases(pg_server)
    assert "test_apple" in databases(pg_server)
    admin(pg_server, "DROP DATABASE test_apple")


def test_a_name_in_use_by_a_live_session_is_refused(inner: pytest.Pytester, pg_server: PostgresServer) -> None:
    admin(pg_server, "CREATE DATABASE test_app")
    holder = psycopg2.connect(**pg_server.connect_params("test_app"))
    try:
        inner.makepyfile("import pytest\n\n@pytest.mark.peewee_db\nasync def test_x():\n    pass\n")
        result = inner.runpytest()
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*'test_app' is in use by another session*--peewee-db-suffix*"])
    finally:
        holder.close()
        admin(pg_server, "DROP DATABASE test_app")


def test_xdist_workers_each_get_a_clone(inner: pytest.Pytester, pg_server: PostgresServer) -> None:
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makepyfile(
        **{
            f"test_worker_{i}": f"""
            import os
            from app.db import database
            from app.models import Note

            async def test_records_its_database():
                await Note.aio_create(text="x")  # unique: clones must not share rows
                with open(os.path.join({str(inner.path)!r}, "seen_{i}"), "w") as out:
                    out.write(database.database)
            """
            for i in range(4)
        }
    )
    result = inner.runpytest("-n", "2", "-p", "no:benchmark")
    result.assert_outcomes(passed=4)
    seen = {inner.path.joinpath(f"seen_{i}").read_text() for i in range(4)}
    assert seen == {"test_app_gw0", "test_app_gw1"}
    assert not {name for name in databases(pg_server) if name.startswith("test_app")}


def test_a_proxy_to_a_psycopg3_database_is_configured_the_same(inner: pytest.Pytester) -> None:
    inner.path.joinpath("app", "db.py").write_text(
        APP_DB.replace("database = peewee_async.PostgresqlDatabase(", "real = peewee_async.Psycopg3Database(")
        + "\nimport peewee\n\ndatabase = peewee.DatabaseProxy()\ndatabase.initialize(real)\n"
    )
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makepyfile(
        test_proxy=ISOLATED_TESTS
        + """
from app.db import real

def test_the_proxied_database_was_pointed():
    assert real.database == "test_app"
"""
    )
    result = inner.runpytest()
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["*test database test_app on * (created, dropped)"])


def test_xdist_workers_share_one_throwaway_server(inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PEEWEE_ASYNC_TESTING_DSN")
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makepyfile(
        **{
            f"test_worker_{i}": f"""
            import os
            from app.db import database

            async def test_records_its_server(peewee_server):
                assert not peewee_server.attached or peewee_server.host == "127.0.0.1"
                with open(os.path.join({str(inner.path)!r}, "seen_{i}"), "w") as out:
                    out.write(f"{{database.database}} {{database.connect_params['port']}}")
            """
            for i in range(4)
        }
    )
    inner.runpytest("-n", "2", "-p", "no:benchmark").assert_outcomes(passed=4)
    seen = [inner.path.joinpath(f"seen_{i}").read_text().split() for i in range(4)]
    assert {name for name, _ in seen} == {"test_app_gw0", "test_app_gw1"}
    assert len({port for _, port in seen}) == 1, f"the workers used different servers: {seen}"


@pytest.mark.parametrize("server", ["given", "throwaway"])
def test_under_xdist_the_controller_reports_the_workers_databases(
    inner: pytest.Pytester, pg_server: PostgresServer, monkeypatch: pytest.MonkeyPatch, server: str
) -> None:
    port = pg_server.port
    if server == "throwaway":  # the controller's: the workers get it as a given server, and drop their databases
        monkeypatch.delenv("PEEWEE_ASYNC_TESTING_DSN")
        port = "*"
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makepyfile(**{f"test_{i}": "async def test_x():\n    pass\n" for i in range(4)})
    result = inner.runpytest("-n", "2", "-p", "no:benchmark")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "peewee-async-testing: database app.db:database, autouse on",
            "created: 2/2 workers",
            f"peewee-async-testing: test databases test_app_gw0, test_app_gw1 on 127.0.0.1:{port} (created, dropped)",
            "*= 4 passed in *",
        ]
    )
    assert result.stdout.str().count("peewee-async-testing: test database") == 1


def test_a_throwaway_server_when_none_is_given(inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PEEWEE_ASYNC_TESTING_DSN")
    inner.makepyfile(
        """
        import pytest
        from app.db import database

        @pytest.mark.peewee_db
        async def test_elsewhere(peewee_server):
            assert not peewee_server.attached
            assert database.connect_params["port"] == peewee_server.port
        """
    )
    result = inner.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test database test_app on 127.0.0.1:* (created, removed with the server)"])


SERVER_INI = """
peewee_async_server_locale = {locale}
peewee_async_server_settings =
    work_mem = 3MB
    fsync = on
"""


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (CONFIGURED + SERVER_INI, "3MB 8MB on {locale}"),  # the server started early, as pytest collects
        (SERVER_INI, "3MB 8MB on {locale}"),  # no database configured: the peewee_server fixture starts it
        (CONFIGURED, "5MB 2MB off C"),  # the ini sets nothing: the environment's
    ],
    ids=["early", "fixture", "environment"],
)
def test_the_ini_sets_the_throwaway_servers_locale_and_settings_over_the_environment(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, extra: str, expected: str
) -> None:
    from peewee_async_testing.initdb import _default_locale

    monkeypatch.delenv("PEEWEE_ASYNC_TESTING_DSN")
    monkeypatch.setenv("PEEWEE_ASYNC_TESTING_PG_LOCALE", "C")
    monkeypatch.setenv("PEEWEE_ASYNC_TESTING_PG_SETTINGS", "work_mem = 5MB; temp_buffers = 2MB")
    make_ini(inner, extra.format(locale=_default_locale()))
    inner.makepyfile(
        f"""
        import contextlib
        import psycopg2

        def test_it(peewee_server):
            assert not peewee_server.attached
            with contextlib.closing(psycopg2.connect(peewee_server.dsn)) as connection:
                cursor = connection.cursor()
                cursor.execute("SELECT concat_ws(' ', current_setting('work_mem'), current_setting('temp_buffers'), "
                               "current_setting('fsync'), current_setting('lc_ctype'))")
                assert cursor.fetchone()[0] == {expected.format(locale=_default_locale())!r}
        """
    )
    inner.runpytest().assert_outcomes(passed=1)


EARLY_CONFTEST = """
import pathlib
from peewee_async_testing.plugin import SERVER_START

def pytest_collection_finish(session):
    started = SERVER_START in session.config.stash
    pathlib.Path(str(session.config.rootpath), "started").write_text(str(started))
"""


def test_the_throwaway_server_starts_while_pytest_collects(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PEEWEE_ASYNC_TESTING_DSN")
    inner.makeconftest(EARLY_CONFTEST)
    inner.makepyfile(
        """
        from peewee_async_testing.plugin import SERVER_START

        async def test_it(peewee_server, pytestconfig):
            assert peewee_server is pytestconfig.stash[SERVER_START].server
            assert "running" in repr(peewee_server)
        """
    )
    inner.runpytest().assert_outcomes(passed=1)
    assert inner.path.joinpath("started").read_text() == "True"
    for option in ("--collect-only", "--fixtures", "--setup-plan"):
        inner.path.joinpath("started").unlink()
        inner.runpytest(option)
        assert inner.path.joinpath("started").read_text() == "False", f"{option} started a server"


def test_a_server_named_by_a_conftest_collected_later_wins(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, pg_server: PostgresServer
) -> None:
    monkeypatch.delenv("PEEWEE_ASYNC_TESTING_DSN")
    inner.makeconftest(EARLY_CONFTEST)
    inner.mkpydir("sub").joinpath("conftest.py").write_text(
        f"import os\n\nos.environ['PEEWEE_ASYNC_TESTING_DSN'] = {pg_server.dsn!r}\n"
    )
    inner.path.joinpath("sub", "test_it.py").write_text(
        "from peewee_async_testing.plugin import SERVER_START\n\n"
        "async def test_it(peewee_server, pytestconfig):\n"
        f"    assert peewee_server.port == {pg_server.port}\n"
        "    assert 'stopped' in repr(pytestconfig.stash[SERVER_START].server)\n"
    )
    inner.runpytest().assert_outcomes(passed=1)
    assert inner.path.joinpath("started").read_text() == "True"  # before that conftest was collected


def test_sqlite_projects_start_no_server_once_it_is_known(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PEEWEE_ASYNC_TESTING_DSN", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    pytester.makepyfile(lite="import peewee_async\n\ndatabase = peewee_async.SqliteDatabase('app.db')\n")
    # pytest's cache on (the other inner runs turn it off): the plugin remembers there.
    pytester.makeini("[pytest]\npeewee_async_database = lite:database\nasyncio_default_fixture_loop_scope = session\n")
    pytester.syspathinsert()
    pytester.makeconftest(EARLY_CONFTEST)
    pytester.makepyfile(
        """
        from peewee_async_testing.plugin import SERVER_START

        def test_one(peewee_database, pytestconfig):
            start = pytestconfig.stash.get(SERVER_START, None)
            assert start is None or "stopped" in repr(start.server), "a server runs for an SQLite database"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)
    assert pytester.path.joinpath("started").read_text() == "True"  # it could not know, the first time

    pytester.runpytest().assert_outcomes(passed=1)
    assert pytester.path.joinpath("started").read_text() == "False"


def test_sqlite_gets_a_temporary_file(
    pytester: pytest.Pytester, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    original = tmp_path / "app.db"
    pytester.makepyfile(
        lite=f"""
        import peewee
        import peewee_async

        database = peewee_async.SqliteDatabase({str(original)!r})

        class Item(peewee_async.AioModel):
            name = peewee.CharField()

            class Meta:
                database = database
        """
    )
    make_ini(pytester, "peewee_async_database = lite:database\npeewee_async_autouse = true")
    pytester.syspathinsert()
    pytester.makepyfile(
        test_lite="""
        from lite import Item, database

        async def test_one():
            assert database.database.endswith("test_app.db")
            await Item.aio_create(name="x")

        async def test_two():
            assert await Item.select().aio_count() == 0
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test database */test_app.db (SQLite) (created, removed)"])
    assert not original.exists(), "the configured SQLite file was created or touched"


# -- a database created uninitialised (database=None), which the app's start-up initialises ------------------------

UNINITIALISED_DB = """
import os

import peewee
import peewee_async

database = peewee_async.{engine}(None)


def start():  # what the app does when it starts: never in the tests
    database.init("app", host=os.environ["INNER_HOST"], port=int(os.environ["INNER_PORT"]), user="postgres")
"""
UNINITIALISED_APPS = {
    "aiopg": UNINITIALISED_DB.format(engine="PostgresqlDatabase"),
    "psycopg": UNINITIALISED_DB.format(engine="Psycopg3Database"),
    "proxy": UNINITIALISED_DB.format(engine="PostgresqlDatabase").replace("database", "real")
    + "\n\ndatabase = peewee.DatabaseProxy()\ndatabase.initialize(real)\n",
}

#: Records whether the database object ends the session as it began: every attribute the identical object,
#: and a dict's or list's content unchanged.
VARS_RESTORED = """
import peewee

from {module} import database

real = database.obj if isinstance(database, peewee.DatabaseProxy) else database


def snapshot():
    return {{
        key: (value, value.copy() if isinstance(value, (dict, list)) else None)
        for key, value in vars(real).items()
    }}


BEFORE = snapshot()


def same(before, after):
    return before[0] is after[0] and before[1] == after[1]


def pytest_sessionfinish(session):  # after every fixture is torn down
    after, missing = snapshot(), (object(), None)
    keys = sorted(BEFORE.keys() | after.keys())
    changed = [key for key in keys if not same(BEFORE.get(key, missing), after.get(key, missing))]
    session.config.rootpath.joinpath("restored").write_text(f"deferred={{real.deferred}} changed={{changed}}")
"""


@pytest.mark.parametrize(("app", "server"), [("aiopg", "given"), ("psycopg", "given"), ("proxy", "throwaway")])
def test_an_uninitialised_database_is_pointed_and_left_uninitialised(
    inner: pytest.Pytester, pg_server: PostgresServer, monkeypatch: pytest.MonkeyPatch, app: str, server: str
) -> None:
    inner.path.joinpath("app", "db.py").write_text(UNINITIALISED_APPS[app])
    if server == "throwaway":
        monkeypatch.delenv("PEEWEE_ASYNC_TESTING_DSN")
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makeconftest(VARS_RESTORED.format(module="app.db"))
    inner.makepyfile(
        test_names="""
        from app.db import database

        def test_the_database_object_points_at_the_test_database():
            assert database.database == "test_app"
            assert not database.deferred
        """,
        test_isolated=ISOLATED_TESTS,
    )
    result = inner.runpytest()
    result.assert_outcomes(passed=4, failed=1)
    how = "dropped" if server == "given" else "removed with the server"
    result.stdout.fnmatch_lines([f"peewee-async-testing: test database test_app on 127.0.0.1:* (created, {how})"])
    assert inner.path.joinpath("restored").read_text() == "deferred=True changed=[]"
    assert "test_app" not in databases(pg_server)


def test_an_uninitialised_sqlite_database_gets_a_temporary_file(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    pytester.makepyfile(
        lite="""
        import peewee
        import peewee_async

        database = peewee_async.SqliteDatabase(None)

        def start():  # what the app does when it starts: never in the tests
            database.init("app.db")

        class Item(peewee_async.AioModel):
            name = peewee.CharField(unique=True)

            class Meta:
                database = database
        """
    )
    make_ini(pytester, "peewee_async_database = lite:database\npeewee_async_autouse = true")
    pytester.syspathinsert()
    pytester.makeconftest(VARS_RESTORED.format(module="lite"))
    pytester.makepyfile(
        test_lite="""
        from lite import Item, database

        async def test_one():
            assert database.database.endswith("/test_lite.db")
            await Item.aio_create(name="x")

        async def test_two():
            assert await Item.select().aio_count() == 0
            await Item.aio_create(name="x")  # unique: fails if test_one's row survived
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["peewee-async-testing: test database */test_lite.db (SQLite) (created, removed)"])
    assert pytester.path.joinpath("restored").read_text() == "deferred=True changed=[]"
    assert not pytester.path.joinpath("app.db").exists()


# -- overriding peewee_database: the plugin only isolates ----------------------------------------------------------

OVERRIDE = """
import pytest
import pytest_asyncio

from app.db import database
from app.models import Comment, Note


@pytest_asyncio.fixture(scope="session")
async def peewee_database():
    database.init("custom", **database.connect_params)
    await database.aio_create_tables([Note, Comment])
    yield database
    await database.aio_close()
"""


@pytest.fixture
def custom(inner: pytest.Pytester, pg_server: PostgresServer) -> Iterator[pytest.Pytester]:
    admin(pg_server, "CREATE DATABASE custom")
    inner.makeconftest(OVERRIDE + "\n\n@pytest.fixture(autouse=True)\ndef _isolate(in_transaction):\n    pass\n")
    yield inner
    admin(pg_server, "DROP DATABASE custom WITH (FORCE)")


def test_an_overriding_fixture_is_in_charge(custom: pytest.Pytester, pg_server: PostgresServer) -> None:
    custom.makepyfile(
        test_it=ISOLATED_TESTS
        + """
from app.db import database

def test_on_the_users_database():
    assert database.database == "custom"
"""
    )
    result = custom.runpytest()
    result.assert_outcomes(passed=4, failed=1)
    assert "test database" not in result.stdout.str()
    assert admin(pg_server, "SELECT count(*) FROM note", database="custom") == [(0,)]


def test_clear_tables_with_an_override(custom: pytest.Pytester, pg_server: PostgresServer) -> None:
    custom.makepyfile(
        test_it="""
        from app.db import database
        from app.models import Note

        def sync_texts():
            with database.allow_sync():
                return [note.text for note in Note.select().order_by(Note.text)]

        def test_sync_code(clear_tables):
            with database.allow_sync():
                Note.create(text="sync")
            assert sync_texts() == ["sync"]

        async def test_async_code_that_sync_queries_must_see(in_transaction, clear_tables):
            assert in_transaction is None  # stepped aside: the row below is committed
            await Note.aio_create(text="committed")
            assert sync_texts() == ["committed"]

        def test_the_table_is_empty_again():
            assert sync_texts() == []
        """
    )
    custom.runpytest().assert_outcomes(passed=3)
    assert admin(pg_server, "SELECT count(*) FROM note", database="custom") == [(0,)]


def test_decorated_tests_get_a_fresh_transaction(custom: pytest.Pytester) -> None:
    custom.makepyfile(
        test_it="""
        from app.db import database
        from app.models import Note
        from peewee_async_testing import TransactionTestCase

        @TransactionTestCase(database)
        async def test_decorated(peewee_database):
            await Note.aio_create(text="x")
            assert await Note.select().aio_count() == 1
        """
    )
    custom.makeconftest(OVERRIDE)
    custom.runpytest().assert_outcomes(passed=1)
