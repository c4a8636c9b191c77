"""The query-counting fixtures, bound to the test database: in a test transaction, under clear_tables, and failing."""

from __future__ import annotations

import sys
from importlib.metadata import version

import pytest

#: Whether pytest-asyncio carries the context variables an async fixture sets to the test: on Python 3.11 and
#: later, and on 3.10 from pytest-asyncio 1.1. A capture opened in a fixture needs it (docs/queries.rst says so).
CONTEXT_TO_TEST = sys.version_info >= (3, 11) or tuple(
    int(part) for part in version("pytest-asyncio").split(".")[:2]
) >= (1, 1)

TESTS = """
import pytest
import pytest_asyncio
from app.models import Note

CONTEXT_TO_TEST = {context_to_test}


@pytest_asyncio.fixture
async def captured(peewee_capture_queries):
    async with peewee_capture_queries() as captured:
        yield captured


async def test_counts_in_the_test_transaction(in_transaction, peewee_assert_num_queries, peewee_capture_queries):
    async with peewee_assert_num_queries(2):
        note = await Note.aio_create(text="a")
        await Note.aio_get(Note.id == note.id)
    async with peewee_capture_queries() as captured:
        await Note.select().aio_execute()
    assert [query.sql.split()[0] for query in captured] == ["SELECT"]


@pytest.mark.skipif(not CONTEXT_TO_TEST, reason="pytest-asyncio < 1.1 on Python 3.10: no fixture context in tests")
async def test_a_capture_opened_by_a_fixture_counts_in_the_test_transaction(captured, in_transaction):
    await Note.aio_create(text="f")
    assert [query.sql.split()[0] for query in captured.all] == ["INSERT"]


@pytest.mark.peewee_db(isolation="clear")
async def test_counts_under_clear_tables(peewee_assert_max_num_queries):
    async with peewee_assert_max_num_queries(1):
        await Note.aio_create(text="b")


@pytest.mark.peewee_db(isolation="clear")
async def test_the_test_transactions_rolled_back():
    assert await Note.select().aio_count() == 0  # "a" and "f" rolled back, "b" cleared


async def test_fails_with_the_statements(peewee_assert_max_num_queries):
    async with peewee_assert_max_num_queries(1):
        for text in ("c", "d", "e"):
            await Note.aio_create(text=text)
"""


def test_the_fixtures_count_on_the_test_database(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_counts=TESTS.format(context_to_test=CONTEXT_TO_TEST))
    result = inner.runpytest()
    result.assert_outcomes(passed=3 + CONTEXT_TO_TEST, failed=1, skipped=not CONTEXT_TO_TEST)
    result.stdout.fnmatch_lines(
        [
            "E * 3 queries ran on PostgresqlDatabase 'test_app', at most 1 expected:",
            "E *1. INSERT INTO \"note\" *params: ?'c'?",
            "E *The same INSERT ran 3 times with different parameters (queries 1-3)*",
        ]
    )
    assert "BEGIN" not in result.stdout.str()
    assert "ROLLBACK" not in result.stdout.str()
