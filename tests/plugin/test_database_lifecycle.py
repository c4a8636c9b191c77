"""The test database: made beside the configured one, pointed at, kept (``--peewee-reuse-db``) or dropped,
kept apart by a suffix, what crashed runs left dropped, and the database object restored after the session."""

from __future__ import annotations

from pathlib import Path

import psycopg2
import pytest

from peewee_async_testing import PostgresServer

from ..helpers import admin, databases
from .project import APP_DB, APP_MODELS, CONFIGURED, ISOLATED_TESTS, make_ini


def test_the_database_object_is_restored_after_the_session(inner: pytest.Pytester) -> None:
    inner.makeconftest(
        """
        import pytest
        from app.db import database

        BEFORE = dict(vars(database))  # as the app made it, before the plugin configures

        @pytest.hookimpl(trylast=True)
        def pytest_unconfigure(config):  # after the plugin's own
            after = vars(database)
            restored = after.keys() == BEFORE.keys() and all(after[key] is BEFORE[key] for key in BEFORE)
            config.rootpath.joinpath("restored").write_text(str(restored))
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
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stdout.fnmatch_lines(["*'test_app' is in use by another session*--peewee-db-suffix*"])
    finally:
        holder.close()
        admin(pg_server, "DROP DATABASE test_app")


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


def test_sqlite_gets_a_temporary_file(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
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
