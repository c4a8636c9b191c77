"""What every entry point says when handed something other than a database it supports: a TypeError that names
what to pass, raised at once, before any connection; MySQL and other backends are refused the same way."""

from __future__ import annotations

import inspect
import unittest
from collections.abc import Callable
from typing import Any

import peewee
import peewee_async
import pytest
from peewee_async.databases import AioDatabase
from peewee_async.pool import AioSqlitePoolBackend

import peewee_async_testing
from peewee_async_testing import (
    AioDatabaseTestCase,
    ConfigurationError,
    TransactionTestCase,
    aio_clear_tables,
    bound_models,
    clear_tables,
)
from peewee_async_testing.writes import WriteTracker

from .helpers import needs_one_loop, run_on_own_loop
from .models import Author


def unittest_class(database: Any) -> None:
    """What unittest does first with an AioDatabaseTestCase: its setUpClass."""
    handed = database

    class TestSomething(AioDatabaseTestCase):
        database = handed

        async def test_x(self) -> None:  # pragma: no cover - never run
            pass

    try:
        TestSomething.setUpClass()
    finally:
        TestSomething.tearDownClass()


#: Every public entry point that takes a database, by name.
ENTRY_POINTS: dict[str, Callable[[Any], Any]] = {
    "TransactionTestCase": TransactionTestCase,
    "AioDatabaseTestCase": unittest_class,
    "aio_clear_tables": aio_clear_tables,
    "clear_tables": clear_tables,
    "bound_models": bound_models,
    "WriteTracker": WriteTracker,
}
entry_points = pytest.mark.parametrize(
    "entry",
    [pytest.param(name, marks=[needs_one_loop] if name == "AioDatabaseTestCase" else []) for name in ENTRY_POINTS],
)


def call(entry: str, database: Any) -> None:
    """Hand ``database`` to ``entry``, and run what it returns if that is a coroutine (no event loop is running)."""
    result = ENTRY_POINTS[entry](database)
    if inspect.iscoroutine(result):
        run_on_own_loop(result)


class OtherDatabase(AioDatabase):  # type: ignore[misc]  # peewee-async ships no types: AioDatabase is Any
    """A peewee-async database of a backend that is neither PostgreSQL, MySQL nor SQLite, as a third party's is."""

    pool_backend_cls = AioSqlitePoolBackend


WRONG = {
    "None": (None, "None|needs a database: set `database = ...` on the class"),
    "a plain peewee database": (peewee.SqliteDatabase(":memory:"), "peewee.SqliteDatabase.*peewee_async"),
    "a module": (peewee_async, r"the module peewee_async.*the database object it holds"),
    "a class": (peewee_async.SqliteDatabase, r"the class peewee_async\.SqliteDatabase.*an instance"),
    "a model": (Author, r"the class tests\.models\.Author.*Author\._meta\.database"),
    "an empty proxy": (peewee.DatabaseProxy(), r"DatabaseProxy that is not initialised.*proxy\.initialize"),
}


@entry_points
@pytest.mark.parametrize("given", WRONG)
def test_what_is_not_a_database_is_a_type_error_that_names_what_to_pass(entry: str, given: str) -> None:
    argument, said = WRONG[given]
    with pytest.raises(TypeError, match=said) as raised:
        call(entry, argument)
    assert isinstance(raised.value, ConfigurationError), "what the library raises stays a ConfigurationError"
    assert "peewee_async.PostgresqlDatabase" in str(raised.value), "the error names what to pass"


def test_the_error_is_public_and_both_kinds() -> None:
    error = peewee_async_testing.DatabaseArgumentError
    assert issubclass(error, ConfigurationError)
    assert issubclass(error, TypeError)


def test_a_value_that_might_hold_a_password_is_not_printed() -> None:
    with pytest.raises(TypeError) as raised:
        TransactionTestCase({"database": "shop", "password": "hunter2"})
    assert "hunter2" not in str(raised.value)
    assert "a dict" in str(raised.value)


def other() -> Any:
    return OtherDatabase(":memory:", password="hunter2")


@entry_points
def test_a_database_of_another_backend_is_refused_at_once(entry: str) -> None:
    database = other()
    with pytest.raises(ConfigurationError) as raised:
        call(entry, database)
    message = str(raised.value)
    assert isinstance(raised.value, TypeError)
    assert "supports PostgreSQL (aiopg, psycopg 3), MySQL (aiomysql) and SQLite" in message
    assert "test_arguments.OtherDatabase" in message
    assert "hunter2" not in message
    assert database.pool_backend.pool is None, "the refusal connected to the database"


def test_a_proxy_to_a_database_of_another_backend_is_refused() -> None:
    proxy = peewee.DatabaseProxy()
    proxy.initialize(other())
    with pytest.raises(ConfigurationError, match=r"test_arguments\.OtherDatabase"):
        TransactionTestCase(proxy)


@needs_one_loop
def test_the_unittest_class_says_what_it_needs_when_run_by_unittest() -> None:
    class TestOnOther(AioDatabaseTestCase):
        database = other()

        async def test_x(self) -> None:  # pragma: no cover - never run
            pass

    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(TestOnOther).run(result)
    assert result.testsRun == 0
    assert len(result.errors) == 1
    assert "TestOnOther.database" in result.errors[0][1]
    assert "supports PostgreSQL (aiopg, psycopg 3), MySQL (aiomysql) and SQLite" in result.errors[0][1]
