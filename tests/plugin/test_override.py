"""A project that overrides ``peewee_database``: the plugin makes no test database, and only isolates."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from peewee_async_testing import PostgresServer

from ..helpers import admin
from .project import CONFIGURED, ISOLATED_TESTS, make_ini

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


NARROW_OVERRIDE = """
import pytest
from app.db import database
from app.models import Comment, Note


@pytest.fixture(scope="{scope}")
def peewee_database():
    if database.database != "custom":
        database.init("custom", **database.connect_params)
        with database.allow_sync():
            database.create_tables([Note, Comment])
            database.close()
    return database
"""


@pytest.mark.parametrize("loop", ["function", "session"])
@pytest.mark.parametrize("scope", ["function", "module"])
def test_an_override_of_any_scope_isolates(
    custom: pytest.Pytester, pg_server: PostgresServer, scope: str, loop: str
) -> None:
    """A plain function-scoped ``peewee_database`` (once a ScopeMismatch from the plugin's pools): transaction and
    clear isolation work with it, on any loop scope."""
    make_ini(custom, CONFIGURED + "peewee_async_autouse = true", loop=loop)
    custom.makeconftest(NARROW_OVERRIDE.replace("{scope}", scope))
    custom.makepyfile(
        test_it=ISOLATED_TESTS
        + """
from app.db import database

def test_sync_and_cleared():
    with database.allow_sync():
        Note.create(text="sync")

def test_cleared():
    with database.allow_sync():
        assert Note.select().count() == 0
"""
    )
    result = custom.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=5, failed=1)
    assert admin(pg_server, "SELECT count(*) FROM note", database="custom") == [(0,)]
