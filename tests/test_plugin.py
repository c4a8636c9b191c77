"""The pytest plugin, driven end to end: real inner pytest sessions (pytester) on the real server."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest

from peewee_async_testing import PostgresServer

INI = """
[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
filterwarnings = error
addopts = --strict-markers -p no:cacheprovider
"""

MODELS = """
import os

import peewee
import peewee_async

database = peewee_async.PostgresqlDatabase(
    os.environ["INNER_DATABASE"], host=os.environ["INNER_HOST"], port=int(os.environ["INNER_PORT"]), user="postgres"
)


class Note(peewee_async.AioModel):
    text = peewee.CharField(unique=True)

    class Meta:
        database = database
"""

CONFTEST = """
import pytest
import pytest_asyncio

from models import Note, database


@pytest_asyncio.fixture(scope="session")
async def peewee_database():
    await database.aio_create_tables([Note])
    yield database
    await database.aio_close()
"""

AUTOUSE = """

@pytest.fixture(autouse=True)
def _isolate(in_transaction):
    pass
"""


def notes(server: PostgresServer, database: str) -> list[str]:
    """The rows of the inner sessions' table, read from outside them."""
    connection = psycopg2.connect(**server.connect_params(database))
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT text FROM note ORDER BY text")
            return [text for (text,) in cursor.fetchall()]
    finally:
        connection.close()


@pytest.fixture
def inner(pytester: pytest.Pytester, pg_server: PostgresServer, pg_database: str) -> Iterator[pytest.Pytester]:
    """A pytester project whose models live in this run's database; the table is dropped afterwards."""
    pytester.makeini(INI)
    pytester.makepyfile(models=MODELS)
    pytester.syspathinsert()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INNER_DATABASE", pg_database)
        patch.setenv("INNER_HOST", pg_server.host)
        patch.setenv("INNER_PORT", str(pg_server.port))
        yield pytester
    connection = psycopg2.connect(**pg_server.connect_params(pg_database))
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS note")
    finally:
        connection.close()


def test_the_plugin_is_registered_under_its_entry_point() -> None:
    (entry,) = [e for e in importlib.metadata.entry_points(group="pytest11") if e.name == "peewee_async_testing"]
    assert entry.value == "peewee_async_testing.plugin"


def test_the_fixtures_are_documented(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    result = pytester.runpytest("--fixtures")
    for fixture, doc in [
        ("in_transaction", "*Run the test inside a*TransactionTestCase*"),
        ("clear_tables", "*Empty every table*"),
        ("peewee_database", "*The peewee-async database that ``in_transaction`` and ``clear_tables`` isolate.*"),
    ]:
        result.stdout.fnmatch_lines([f"{fixture} -- *peewee_async_testing/plugin.py*", doc])


def test_without_a_database_the_error_says_what_to_add(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        test_it="""
        async def test_needs_db(in_transaction):
            pass
        """
    )
    result = inner.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "The in_transaction fixture needs a peewee-async database, but none is configured. "
            "Override the `peewee_database` fixture in your conftest.py *",
            "    def peewee_database():",
        ]
    )


def test_in_transaction_keeps_each_test_to_itself(inner: pytest.Pytester, pg_server: Any, pg_database: str) -> None:
    inner.makeconftest(CONFTEST + AUTOUSE)
    inner.makepyfile(
        test_it="""
        import pytest
        from models import Note

        @pytest.mark.asyncio
        async def test_one(in_transaction):
            assert in_transaction.connection is not None
            await Note.aio_create(text="same")
            assert await Note.select().aio_count() == 1

        @pytest.mark.asyncio
        async def test_two_sees_nothing_of_one():
            assert await Note.select().aio_count() == 0
            await Note.aio_create(text="same")  # unique: fails if test_one's row survived

        @pytest.mark.asyncio
        async def test_a_crash_in_one_test():
            await Note.aio_create(text="crash")
            raise RuntimeError("boom")

        @pytest.mark.asyncio
        async def test_does_not_reach_the_next():
            assert await Note.select().aio_count() == 0
        """
    )
    result = inner.runpytest()
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*RuntimeError: boom*"])
    assert notes(pg_server, pg_database) == []


def test_clear_tables_cleans_up_after_sync_and_async_tests(
    inner: pytest.Pytester, pg_server: Any, pg_database: str
) -> None:
    inner.makeconftest(CONFTEST + AUTOUSE)
    inner.makepyfile(
        test_it="""
        import pytest
        from models import Note, database

        def sync_texts():
            with database.allow_sync():
                return [note.text for note in Note.select().order_by(Note.text)]

        def test_sync_code(clear_tables):
            with database.allow_sync():
                Note.create(text="sync")
            assert sync_texts() == ["sync"]

        @pytest.mark.asyncio
        async def test_async_code_that_sync_queries_must_see(in_transaction, clear_tables):
            assert in_transaction is None  # stepped aside: the row below is committed
            await Note.aio_create(text="committed")
            assert sync_texts() == ["committed"]

        def test_the_table_is_empty_again():
            assert sync_texts() == []
        """
    )
    result = inner.runpytest()
    result.assert_outcomes(passed=3)
    assert notes(pg_server, pg_database) == []


def test_without_clear_tables_sync_writes_would_survive(
    inner: pytest.Pytester, pg_server: Any, pg_database: str
) -> None:
    """The control for the test above: it is clear_tables that empties the table."""
    inner.makeconftest(CONFTEST)
    inner.makepyfile(
        test_it="""
        from models import Note, database

        def test_sync_code(peewee_database):
            with database.allow_sync():
                Note.create(text="sync")
        """
    )
    inner.runpytest().assert_outcomes(passed=1)
    assert notes(pg_server, pg_database) == ["sync"]


def test_in_transaction_works_in_a_decorated_unittest_style_function(inner: pytest.Pytester) -> None:
    inner.makeconftest(CONFTEST)
    inner.makepyfile(
        test_it="""
        import pytest
        from models import Note, database
        from peewee_async_testing import TransactionTestCase

        @pytest.mark.asyncio
        @TransactionTestCase(database)
        async def test_decorated(peewee_database):
            await Note.aio_create(text="x")

        @pytest.mark.asyncio
        async def test_after(peewee_database):
            assert await Note.select().aio_count() == 0
        """
    )
    inner.runpytest().assert_outcomes(passed=2)
