"""The throwaway server, when no server is given: started while pytest collects (and only when tests will
run), its locale and settings from the ini file, and none for an SQLite project."""

from __future__ import annotations

import pytest

from peewee_async_testing import PostgresServer

from .project import CONFIGURED, make_ini


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


def test_an_sqlite_project_starts_no_server(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PEEWEE_ASYNC_TESTING_DSN", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    pytester.makepyfile(lite="import peewee_async\n\ndatabase = peewee_async.SqliteDatabase('app.db')\n")
    pytester.makeini("[pytest]\npeewee_async_database = lite:database\nasyncio_default_fixture_loop_scope = session\n")
    pytester.syspathinsert()
    pytester.makeconftest(EARLY_CONFTEST)
    pytester.makepyfile(
        """
        from peewee_async_testing.plugin import SERVER_START

        def test_one(peewee_database, pytestconfig):
            assert SERVER_START not in pytestconfig.stash, "a server was started for an SQLite database"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)
    assert pytester.path.joinpath("started").read_text() == "False"  # the database is known as pytest configures
