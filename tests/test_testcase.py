"""AioDatabaseTestCase, the unittest class: class data shared, each test undone, and what it needs said."""

from __future__ import annotations

import sys
import unittest
from typing import Any

import pytest

from peewee_async_testing import AioDatabaseTestCase

from .helpers import is_mysql, names, needs_one_loop
from .models import Author, Book


def run_unittest(case: type[unittest.TestCase]) -> unittest.TestResult:
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(case)
    result = unittest.TestResult()
    suite.run(result)
    return result


@needs_one_loop
def test_the_unittest_class_shares_class_data_and_undoes_each_test(database: Any) -> None:
    session_database = database
    seen: list[tuple[str, list[str]]] = []

    class TestAuthors(AioDatabaseTestCase):
        database = session_database
        reset_sequences = not is_mysql(session_database)  # (MySQL: see the test below)
        ada: Author

        @classmethod
        async def asyncSetUpTestData(cls) -> None:
            cls.ada = await Author.aio_create(name="ada")

        async def test_a_adds_a_book(self) -> None:
            await Book.aio_create(title="notes", author=self.ada)
            seen.append(("a", await names()))
            assert await Book.select().aio_count() == 1

        async def test_b_sees_no_book(self) -> None:
            seen.append(("b", await names()))
            assert await Book.select().aio_count() == 0

        async def test_c_uses_app_transactions(self) -> None:
            with self.assertRaises(ValueError):  # noqa: PT027 - a unittest class, run by unittest
                async with session_database.aio_atomic():
                    pass

    result = run_unittest(TestAuthors)
    assert result.wasSuccessful(), result.errors + result.failures
    assert result.testsRun == 3
    assert seen == [("a", ["ada"]), ("b", ["ada"])]  # the database fixture then checks that nothing is left


@needs_one_loop
def test_on_mysql_reset_sequences_with_class_data_says_why_it_cannot(database: Any) -> None:
    """Each test runs on a savepoint of the class's transaction, and setting a counter (ALTER TABLE) would commit it."""
    if not is_mysql(database):
        pytest.skip("MySQL only: PostgreSQL's setval() needs no commit")
    session_database = database

    class TestAuthors(AioDatabaseTestCase):
        database = session_database
        reset_sequences = True

        async def test_x(self) -> None:  # pragma: no cover - never run
            pass

    result = run_unittest(TestAuthors)
    assert len(result.errors) == 1
    assert "reset_sequences cannot apply to a TransactionTestCase nested in another on MySQL" in result.errors[0][1]


@needs_one_loop
def test_the_unittest_class_needs_a_database() -> None:
    class TestNothing(AioDatabaseTestCase):
        async def test_x(self) -> None:  # pragma: no cover - never run
            pass

    result = run_unittest(TestNothing)
    assert len(result.errors) == 1
    assert "needs a database: set `database = ...` on the class" in result.errors[0][1]


@pytest.mark.skipif(sys.version_info >= (3, 11), reason="the error of Python 3.10")
def test_on_python_3_10_the_unittest_class_says_what_it_needs(database: Any) -> None:
    session_database = database

    class TestAuthors(AioDatabaseTestCase):
        database = session_database

        async def test_x(self) -> None:  # pragma: no cover - never run
            pass

    result = run_unittest(TestAuthors)
    assert len(result.errors) == 1
    assert "AioDatabaseTestCase needs Python 3.11 to 3.13, and Python 3.10 has no asyncio.Runner" in result.errors[0][1]
