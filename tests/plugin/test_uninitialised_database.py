"""A database created uninitialised (``database=None``), which the app's start-up initialises: pointed at
the test database for the session, and left uninitialised after it."""

from __future__ import annotations

import pytest

from peewee_async_testing import PostgresServer

from ..helpers import databases
from .project import CONFIGURED, ISOLATED_TESTS, make_ini

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
import pytest

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


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):  # after the plugin's own
    after, missing = snapshot(), (object(), None)
    keys = sorted(BEFORE.keys() | after.keys())
    changed = [key for key in keys if not same(BEFORE.get(key, missing), after.get(key, missing))]
    config.rootpath.joinpath("restored").write_text(f"deferred={{real.deferred}} changed={{changed}}")
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
