"""The test database on a MySQL/MariaDB server: made with its mark, dropped with its sessions killed, never one the
plugin did not make, under ``GET_LOCK``, reused, and copied for each pytest-xdist worker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import peewee
import peewee_async
import pymysql
import pytest

from peewee_async_testing import MariaDBServer
from peewee_async_testing.building import SchemaBuild
from peewee_async_testing.exceptions import ConfigurationError
from peewee_async_testing.mysqldb import MARK_PROCEDURE, MySQLTestDatabase

from .project import APP_MODELS, CONFIGURED, ISOLATED_TESTS, MYSQL_APP_DB, make_ini

ONE_TEST = "import pytest\n\n@pytest.mark.peewee_db\nasync def test_x():\n    pass\n"


@pytest.fixture
def shared(mysql_server: MariaDBServer) -> MariaDBServer:
    """The run's MariaDB server as a server others share (attached, by its DSN): nothing on it is the session's
    alone, so every database is marked, locked and dropped."""
    return MariaDBServer(dsn=mysql_server.dsn)


def sql(server: Any, statement: str, params: tuple[Any, ...] = (), database: str | None = None) -> list[Any]:
    """Run one statement on the server (in ``database``); return its rows."""
    connection = server.connect(database)
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            return list(cursor.fetchall())
    finally:
        connection.close()


def schemas(server: Any) -> set[str]:
    return {name for (name,) in sql(server, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")}


def mark_of(server: Any, name: str) -> dict[str, Any]:
    rows = sql(
        server,
        "SELECT ROUTINE_COMMENT FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s AND ROUTINE_NAME = %s",
        (name, MARK_PROCEDURE),
    )
    prefix = "peewee-async-testing test database "
    return dict(json.loads(rows[0][0][len(prefix) :])) if rows else {}


DATABASE = peewee_async.MySQLDatabase(None)


class Note(peewee_async.AioModel):  # type: ignore[misc]  # peewee-async ships no types
    text = peewee.CharField(unique=True)

    class Meta:
        database = DATABASE


class Comment(peewee_async.AioModel):  # type: ignore[misc]
    note = peewee.ForeignKeyField(Note, backref="comments")

    class Meta:
        database = DATABASE


MODELS: list[type[peewee.Model]] = [Note, Comment]


@pytest.fixture
def real_app(mysql_server: Any) -> Iterator[str]:
    """The app's real database ``app``, holding a sentinel row the plugin must leave alone; every ``test_app...``
    database is dropped at the end, and fails the test."""
    sql(mysql_server, "CREATE DATABASE app")
    sql(mysql_server, "CREATE TABLE note (id int PRIMARY KEY AUTO_INCREMENT, text varchar(255))", database="app")
    sql(mysql_server, "INSERT INTO note (text) VALUES ('sentinel')", database="app")
    yield "app"
    assert sql(mysql_server, "SELECT text FROM note", database="app") == [("sentinel",)], "the app database was touched"
    left = {name for name in schemas(mysql_server) if name.startswith("test_app")}
    for name in left | {"app"}:
        sql(mysql_server, f"DROP DATABASE `{name}`")
    assert not left, f"test databases were left behind: {left}"


@pytest.fixture
def app(mysql_server: Any, real_app: str) -> peewee_async.MySQLDatabase:
    """The app's database object, on its real database."""
    DATABASE.init(real_app, host=mysql_server.host, port=mysql_server.port, user=mysql_server.user)
    return DATABASE


def test_database(app: Any, server: Any, **options: Any) -> MySQLTestDatabase:
    return MySQLTestDatabase(app, MODELS, server=server, module="app.db", **options)


test_database.__test__ = False  # type: ignore[attr-defined]


def tables(server: Any, name: str) -> set[str]:
    rows = sql(server, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (name,))
    return {table for (table,) in rows}


def test_the_test_database_is_made_marked_and_dropped(app: Any, mysql_server: Any, shared: MariaDBServer) -> None:
    made = test_database(app, shared)
    made.setup()
    assert app.database == "test_app"
    assert tables(mysql_server, "test_app") == {"note", "comment"}
    mark = mark_of(mysql_server, "test_app")
    assert (mark["module"], mark["database"], mark["name"], mark["run"]) == ("app.db", "app", "test_app", made.run)
    assert mark["schema"] == SchemaBuild(MODELS).fingerprint()
    made.teardown()
    assert "test_app" not in schemas(mysql_server)
    assert app.database == "app"


def test_the_drop_kills_the_sessions_still_using_it(app: Any, mysql_server: Any, shared: MariaDBServer) -> None:
    made = test_database(app, shared)
    made.setup()
    left_open = mysql_server.connect("test_app")  # a connection the code under test never closed
    made.teardown()
    assert "test_app" not in schemas(mysql_server)
    with pytest.raises(pymysql.err.OperationalError):
        left_open.ping(reconnect=False)


@pytest.mark.parametrize("options", [{}, {"drop_stale": True}, {"create": True, "reuse": True}], ids=str)
def test_a_database_the_plugin_did_not_make_is_refused_and_kept(
    app: Any, mysql_server: Any, shared: MariaDBServer, options: Any
) -> None:
    sql(mysql_server, "CREATE DATABASE test_app")
    sql(mysql_server, "CREATE TABLE note (text text)", database="test_app")
    sql(mysql_server, "INSERT INTO note VALUES ('theirs')", database="test_app")
    with pytest.raises(ConfigurationError, match="already exists and is not a test database of this project"):
        test_database(app, shared, **options).setup()
    assert sql(mysql_server, "SELECT text FROM note", database="test_app") == [("theirs",)]
    assert app.database == "app"
    sql(mysql_server, "DROP DATABASE test_app")


def test_another_projects_database_is_refused_and_kept(app: Any, mysql_server: Any, shared: MariaDBServer) -> None:
    other = MySQLTestDatabase(app, MODELS, server=shared, module="other.db", reuse=True)
    other.setup()
    other.teardown()  # kept, for reuse
    sql(mysql_server, "INSERT INTO note (text) VALUES ('theirs')", database="test_app")
    with pytest.raises(ConfigurationError, match=r"made for another project: other\.db, database app"):
        test_database(app, shared, create=True).setup()
    assert sql(mysql_server, "SELECT text FROM note", database="test_app") == [("theirs",)]
    sql(mysql_server, "DROP DATABASE test_app")


def test_a_database_replaced_during_the_session_is_not_dropped(
    app: Any, mysql_server: Any, shared: MariaDBServer
) -> None:
    made = test_database(app, shared)
    made.setup()
    made._close_holder()
    sql(mysql_server, "DROP DATABASE test_app")
    sql(mysql_server, "CREATE DATABASE test_app")  # someone else's now, under the same name
    sql(mysql_server, "CREATE TABLE note (text text)", database="test_app")
    made.teardown()
    assert tables(mysql_server, "test_app") == {"note"}
    assert made.kept == ["test_app (replaced by another during the session)"]
    sql(mysql_server, "DROP DATABASE test_app")


def test_making_and_dropping_hold_the_projects_lock(app: Any, mysql_server: Any, shared: MariaDBServer) -> None:
    seen = []

    class Build(SchemaBuild):
        def __call__(self, database: Any) -> None:
            used = sql(mysql_server, "SELECT IS_USED_LOCK(%s)", (lock_name(),))
            seen.append(used[0][0])
            super().__call__(database)

    made = test_database(app, shared, build=Build(MODELS))
    made.setup()
    made.teardown()
    assert seen, "the schema was not built"
    assert seen[0] is not None, "the tables were made without the lock"
    assert sql(mysql_server, "SELECT IS_USED_LOCK(%s)", (lock_name(),)) == [(None,)]


def lock_name() -> str:
    import hashlib

    return "peewee-async-testing " + hashlib.sha256(b"test_app").hexdigest()[:40]


def test_reuse_keeps_the_database_while_its_schema_is_unchanged(
    app: Any, mysql_server: Any, shared: MariaDBServer
) -> None:
    first = test_database(app, shared, reuse=True)
    first.setup()
    first.teardown()
    sql(mysql_server, "INSERT INTO note (text) VALUES ('kept')", database="test_app")
    second = test_database(app, shared, reuse=True)
    second.setup()
    second.teardown()
    assert second.reused
    assert sql(mysql_server, "SELECT text FROM note", database="test_app") == [("kept",)]
    fresh = test_database(app, shared, reuse=True, create=True)
    fresh.setup()
    fresh.teardown()
    assert not fresh.reused
    assert sql(mysql_server, "SELECT text FROM note", database="test_app") == []
    sql(mysql_server, "DROP DATABASE test_app")


def test_a_crashed_runs_database_is_dropped_as_stale_and_a_held_one_kept(
    app: Any, mysql_server: Any, shared: MariaDBServer
) -> None:
    crashed = test_database(app, shared, suffix="one")
    crashed.setup()
    crashed._close_holder()  # killed: nothing dropped, nobody holds it
    crashed._restore_object()
    live = test_database(app, shared, suffix="two")
    live.setup()
    live._restore_object()
    try:
        now = test_database(app, shared, drop_stale=True)
        now.setup()
        now.teardown()
        assert now.dropped_stale == ["test_app_one"]
        assert "test_app_one" not in schemas(mysql_server)
        assert "test_app_two" in schemas(mysql_server), "a database a live session holds was dropped"
    finally:
        live._close_holder()
    sql(mysql_server, "DROP DATABASE test_app_two")


def test_each_xdist_worker_gets_a_copy_of_the_tables_and_rows(
    app: Any, mysql_server: Any, shared: MariaDBServer
) -> None:
    seeded = []

    class Build(SchemaBuild):
        def __call__(self, database: Any) -> None:
            super().__call__(database)
            with database.allow_sync():
                Note.create(text="seed")
            seeded.append(database.database)

    workers = [test_database(app, shared, worker=worker, run="run-1", build=Build(MODELS)) for worker in ("gw0", "gw1")]
    workers[0].setup()
    workers[0]._restore_object()
    workers[1].setup()
    try:
        assert seeded == ["test_app"], "the schema was built more than once"
        for name in ("test_app_gw0", "test_app_gw1"):
            assert tables(mysql_server, name) == {"note", "comment"}
            assert sql(mysql_server, "SELECT text FROM note", database=name) == [("seed",)]
            sql(mysql_server, "INSERT INTO note (text) VALUES ('x')", database=name)
            with pytest.raises(pymysql.err.IntegrityError):  # the foreign key came along
                sql(mysql_server, "INSERT INTO comment (note_id) VALUES (99)", database=name)
            assert mark_of(mysql_server, name)["template"] == "test_app"
    finally:
        workers[1].teardown()
        workers[0].teardown()
    assert not {name for name in schemas(mysql_server) if name.startswith("test_app")}


# -- through the plugin -------------------------------------------------------------------------------------------


# The inner runs run in a subprocess, each with the plugin's modules of its own (see tests/plugin/conftest.py on
# what an in-process run does to the modules it imports first).
@pytest.fixture
def inner(
    pytester: pytest.Pytester, mysql_server: Any, real_app: str, monkeypatch: pytest.MonkeyPatch
) -> pytest.Pytester:
    """A pytester project whose app is on the MySQL server; inner runs make their test databases there."""
    pytester.mkpydir("app")
    pytester.path.joinpath("app", "db.py").write_text(MYSQL_APP_DB)
    pytester.path.joinpath("app", "models.py").write_text(APP_MODELS)
    pytester.syspathinsert()
    make_ini(pytester)
    monkeypatch.setenv("INNER_MYSQL_HOST", mysql_server.host)
    monkeypatch.setenv("INNER_MYSQL_PORT", str(mysql_server.port))
    monkeypatch.setenv("PEEWEE_ASYNC_TESTING_DSN", mysql_server.dsn)
    for name in ("PEEWEE_ASYNC_TESTING_MYSQL_DSN", "PEEWEE_ASYNC_TESTING_DB_SUFFIX"):
        monkeypatch.delenv(name, raising=False)
    return pytester


#: A conftest that writes which throwaway server the session started, if any, once the tests are collected.
STARTED = """
import pathlib
from peewee_async_testing.plugin import SERVER_START

def pytest_collection_finish(session):
    start = session.config.stash.get(SERVER_START, None)
    pathlib.Path(str(session.config.rootpath), "started").write_text(type(start.server).__name__ if start else "")
"""


@pytest.mark.parametrize("given", ["--peewee-dsn", "$PEEWEE_ASYNC_TESTING_DSN", "$PEEWEE_ASYNC_TESTING_MYSQL_DSN"])
def test_a_mysql_database_gets_its_test_database_on_the_mysql_server_given(
    inner: pytest.Pytester, mysql_server: Any, monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    options: list[str] = []
    if given != "$PEEWEE_ASYNC_TESTING_DSN":
        monkeypatch.delenv("PEEWEE_ASYNC_TESTING_DSN")
    if given == "--peewee-dsn":
        options = ["--peewee-dsn", mysql_server.dsn]
    elif given == "$PEEWEE_ASYNC_TESTING_MYSQL_DSN":
        monkeypatch.setenv("PEEWEE_ASYNC_TESTING_MYSQL_DSN", mysql_server.dsn)
        monkeypatch.setenv("PEEWEE_ASYNC_TESTING_DSN", "postgresql://nobody@127.0.0.1:1/none")  # comes second
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makeconftest(STARTED)
    inner.makepyfile(ISOLATED_TESTS)
    result = inner.runpytest_subprocess(*options)
    result.assert_outcomes(passed=3, failed=1)  # (one test crashes on purpose)
    result.stdout.fnmatch_lines(
        [f"peewee-async-testing: test database test_app on {mysql_server.host}:{mysql_server.port} (created, dropped)"]
    )
    assert inner.path.joinpath("started").read_text() == "", "a throwaway server was started for nothing"


def test_without_a_dsn_a_throwaway_mariadb_server_and_no_postgresql_one(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A PostgreSQL server in the environment (for the PostgreSQL projects) is not this project's.
    monkeypatch.setenv("PEEWEE_ASYNC_TESTING_DSN", "postgresql://nobody@127.0.0.1:1/none")
    inner.makeconftest(STARTED)
    inner.makepyfile(
        """
        import pytest
        from app.db import database

        @pytest.mark.peewee_db
        async def test_on_it(peewee_server):
            assert type(peewee_server).__name__ == "MariaDBServer"
            assert not peewee_server.attached
            assert database.connect_params["port"] == peewee_server.port
        """
    )
    result = inner.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test database test_app on 127.0.0.1:* (created, removed with the server)"])
    assert inner.path.joinpath("started").read_text() == "MariaDBServer"


def test_the_ini_settings_are_given_to_the_throwaway_mariadb_server(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PEEWEE_ASYNC_TESTING_DSN")
    make_ini(inner, CONFIGURED + "peewee_async_server_settings =\n    innodb_lock_wait_timeout = 7\n")
    inner.makepyfile(
        """
        import pytest
        from app.db import database

        @pytest.mark.peewee_db
        async def test_the_setting():
            async with database.aio_connection() as connection:
                async with connection.cursor() as cursor:
                    await cursor.execute("SELECT @@GLOBAL.innodb_lock_wait_timeout")
                    assert await cursor.fetchall() == ((7,),)
        """
    )
    inner.runpytest_subprocess().assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("datadir = /srv/data", "*sets datadir, but the throwaway server chooses where it listens*"),
        ("innodb lock wait = 7", "*'innodb lock wait = 7' is not a setting of the form `name = value`*"),
    ],
)
def test_a_bad_ini_setting_for_the_mariadb_server_is_said_before_any_test(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, line: str, said: str
) -> None:
    monkeypatch.delenv("PEEWEE_ASYNC_TESTING_DSN")
    make_ini(inner, CONFIGURED + f"peewee_async_server_settings =\n    {line}\n")
    inner.makepyfile(ISOLATED_TESTS)
    result = inner.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([said])
    assert "PostgreSQL" not in result.stderr.str()


def test_a_postgresql_dsn_for_a_mysql_database_is_said_once(inner: pytest.Pytester) -> None:
    inner.makepyfile(ISOLATED_TESTS)
    result = inner.runpytest_subprocess("--peewee-dsn", "postgresql://app:s3cret@db.example/shop")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*app.db:database is a MySQL database, but --peewee-dsn (postgresql://app:***@db.example/shop) names a "
            "PostgreSQL server: give a mysql://user:password@host:port/ URL, or leave it out for a throwaway MySQL "
            "server."
        ]
    )
    assert "s3cret" not in result.stdout.str() + result.stderr.str()


def test_reuse_and_a_suffix_on_mysql(inner: pytest.Pytester, mysql_server: Any) -> None:
    inner.makepyfile(ONE_TEST)
    inner.runpytest_subprocess("--peewee-reuse-db").stdout.fnmatch_lines(
        ["*test database test_app on * (created, kept)"]
    )
    inner.runpytest_subprocess("--peewee-reuse-db").stdout.fnmatch_lines(
        ["*test database test_app on * (reused, kept)"]
    )
    sql(mysql_server, "DROP DATABASE test_app")
    inner.runpytest_subprocess("--peewee-db-suffix", "ci7").stdout.fnmatch_lines(
        ["*test database test_app_ci7 on * (created, dropped)"]
    )


@pytest.mark.parametrize("server", ["given", "throwaway"])
def test_xdist_workers_each_get_a_copy_on_mysql(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, server: str
) -> None:
    if server == "throwaway":  # the controller's, handed to the workers
        monkeypatch.delenv("PEEWEE_ASYNC_TESTING_DSN")
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makepyfile(
        **{
            f"test_worker_{i}": f"""
            import os
            from app.db import database
            from app.models import Note

            async def test_records_its_database():
                await Note.aio_create(text="x")  # unique: the copies must not share rows
                with open(os.path.join({str(inner.path)!r}, "seen_{i}"), "w") as out:
                    out.write(database.database)
            """
            for i in range(4)
        }
    )
    result = inner.runpytest_subprocess("-n", "2", "-p", "no:benchmark")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        ["peewee-async-testing: test databases test_app_gw0, test_app_gw1 on 127.0.0.1:* (created, dropped)"]
    )
    assert {inner.path.joinpath(f"seen_{i}").read_text() for i in range(4)} == {"test_app_gw0", "test_app_gw1"}


def test_the_real_database_is_refused(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest
        from app.db import database
        from app.models import Note
        from peewee_async_testing.exceptions import DatabaseAccessError

        @pytest.mark.peewee_db
        async def test_back_to_the_real_one():
            params = dict(database.connect_params)
            database.init("app", **params)
            with pytest.raises(DatabaseAccessError, match="pointed back at your real database 'app'"):
                await Note.select().aio_count()
        """
    )
    inner.runpytest_subprocess().assert_outcomes(passed=1)


def test_a_socket_that_would_send_the_test_database_elsewhere_is_refused(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest
        from app.db import database
        from app.models import Note
        from peewee_async_testing.exceptions import DatabaseAccessError

        @pytest.mark.peewee_db
        async def test_through_a_socket():
            database.init(database.database, **database.connect_params, unix_socket="/run/mysqld/mysqld.sock")
            with pytest.raises(DatabaseAccessError, match="was pointed at 'test_app' during the session"):
                await Note.select().aio_count()
        """
    )
    inner.runpytest_subprocess().assert_outcomes(passed=1)


NOTES_MIGRATION = """
import peewee

def migrate(migrator, database, *, fake=False):
    @migrator.create_model
    class Note(peewee.Model):
        text = peewee.CharField(unique=True)

        class Meta:
            table_name = "note"

def rollback(migrator, database, *, fake=False):
    migrator.remove_model("note")
"""

COMMENTS_MIGRATION = """
import peewee

def migrate(migrator, database, *, fake=False):
    @migrator.create_model
    class Comment(peewee.Model):
        note = peewee.ForeignKeyField(migrator.orm["note"], backref="comments")

        class Meta:
            table_name = "comment"

def rollback(migrator, database, *, fake=False):
    migrator.remove_model("comment")
"""


def with_migrations(inner: pytest.Pytester, extra: str = "") -> None:
    folder = inner.path / "app" / "migrations"
    folder.mkdir()
    folder.joinpath("001_notes.py").write_text(NOTES_MIGRATION)
    folder.joinpath("002_comments.py").write_text(COMMENTS_MIGRATION)
    make_ini(inner, CONFIGURED + "peewee_async_migrations = app/migrations\npeewee_async_autouse = true\n" + extra)


def test_migrations_build_the_test_database_and_each_worker_gets_their_history(inner: pytest.Pytester) -> None:
    with_migrations(inner)
    inner.makepyfile(
        **{
            f"test_{i}": """
            from peewee_async.databases import fetchall
            from app.db import database
            from app.models import Comment, Note

            async def test_built_by_the_migrations():
                query = "SELECT name FROM migratehistory ORDER BY name"
                rows = await database.aio_execute_sql(query, fetch_results=fetchall)
                assert [name for (name,) in rows] == ["001_notes", "002_comments"]
                note = await Note.aio_create(text="x")
                await Comment.aio_create(note=note)
            """
            for i in range(2)
        }
    )
    inner.runpytest_subprocess("-n", "2", "-p", "no:benchmark").assert_outcomes(passed=2)


def test_the_ready_made_migration_tests_say_they_do_not_run_on_mysql(inner: pytest.Pytester) -> None:
    with_migrations(inner, "peewee_async_migration_tests = true\n")
    result = inner.runpytest_subprocess("-k", "apply")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*The ready-made migration tests run on PostgreSQL and SQLite, not yet on MySQL*"])


def test_in_transaction_and_its_options_through_the_plugin_on_mysql(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        test_shared="""
        import pytest
        from app.models import Note

        @pytest.fixture(scope="module")
        async def shared(peewee_module_transaction):
            await Note.aio_create(text="shared")

        @pytest.mark.peewee_db
        async def test_sees_the_shared_row(shared):
            assert [note.text for note in await Note.select().aio_execute()] == ["shared"]
            await Note.aio_create(text="mine")

        @pytest.mark.peewee_db
        async def test_sees_only_the_shared_row(shared):
            assert [note.text for note in await Note.select().aio_execute()] == ["shared"]
        """,
        test_options="""
        import pytest
        from app.db import database
        from app.models import Note

        @pytest.mark.peewee_db(allow_transactions=True)
        async def test_an_app_transaction_runs_on_a_savepoint():
            async with database.aio_atomic():
                await Note.aio_create(text="inner")
            assert await Note.select().aio_count() == 1

        @pytest.mark.peewee_db(reset_sequences=True)
        async def test_ids_start_from_one():
            assert (await Note.aio_create(text="first")).id == 1

        @pytest.mark.peewee_db
        async def test_nothing_survived():
            assert await Note.select().aio_count() == 0
        """,
    )
    inner.runpytest_subprocess().assert_outcomes(passed=5)


def test_the_plugin_reads_the_servers_own_variables() -> None:
    from peewee_async_testing import mariadb, server, servers

    assert (servers.DSN_ENV, servers.MYSQL_DSN_ENV) == (server.DSN_ENV, mariadb.MYSQL_DSN_ENV)


def test_clear_isolation_on_mysql(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest
        from app.db import database
        from app.models import Note

        @pytest.mark.peewee_db(isolation="clear")
        def test_writes():
            with database.allow_sync():
                Note.create(text="same")

        @pytest.mark.peewee_db(isolation="clear")
        def test_sees_nothing():
            with database.allow_sync():
                assert Note.select().count() == 0
        """
    )
    inner.runpytest_subprocess().assert_outcomes(passed=2)
