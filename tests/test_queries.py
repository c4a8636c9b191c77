"""capture_queries and the query assertions on every driver: each code path counted, the library's own
statements not, the same count with and without a test transaction, and failure messages a reader can use."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import peewee
import peewee_async
import pytest

from peewee_async_testing import (
    CapturedQueries,
    TransactionTestCase,
    assert_max_num_queries,
    assert_num_queries,
    assert_queries_match,
    capture_queries,
)

from .helpers import is_sqlite
from .models import Author, Book


async def some_work(db: Any) -> None:
    """What the code under test does: a transaction with two writes, and a read (3 statements that count)."""
    async with db.aio_atomic():
        author = await Author.aio_create(name="ada")
        await Book.aio_create(title="notes", author=author)
    await Author.select().where(Author.name == "ada").aio_get()


async def counted(db: Any, **case: Any) -> list[str]:
    """The SQL that counts of :func:`some_work`, inside a TransactionTestCase with ``case`` (or none: None)."""
    if case.pop("none", False):
        async with capture_queries(db) as captured:
            await some_work(db)
        await Book.delete().aio_execute()
        await Author.delete().aio_execute()
    else:
        async with TransactionTestCase(db, **case), capture_queries(db) as captured:
            await some_work(db)
    return [query.sql for query in captured]


async def test_every_model_method_and_query_is_counted(database: Any) -> None:
    async with capture_queries(database) as captured:
        author = await Author.aio_create(name="ada")
        await Author.select().where(Author.id == author.id).aio_get()
        await Author.update(name="lovelace").where(Author.id == author.id).aio_execute()
        await database.aio_execute(Author.select())
        await database.aio_execute_sql("SELECT 1")
        await Author.delete().aio_execute()
    assert [query.sql.split()[0] for query in captured] == ["INSERT", "SELECT", "UPDATE", "SELECT", "SELECT", "DELETE"]
    assert captured[1].params[0] == author.id
    assert all(query.duration >= 0 for query in captured)
    assert len(captured) == len(captured.all) == 6


@pytest.mark.parametrize(
    "case",
    [
        {},
        {"allow_transactions": True},
        {"allow_transactions": True, "autosavepoint": True},
        {"allow_transactions": True, "reset_sequences": True},
    ],
    ids=["plain", "allow", "autosavepoint", "reset_sequences"],
)
async def test_the_count_is_the_same_inside_and_outside_a_test_transaction(database: Any, case: dict[str, Any]) -> None:
    outside = await counted(database, none=True)
    assert [sql.split()[0] for sql in outside] == ["INSERT", "INSERT", "SELECT"]
    if not case:  # aio_atomic() is refused without allow_transactions
        async with TransactionTestCase(database), capture_queries(database) as captured:
            await Author.aio_create(name="ada")
        assert [query.sql.split()[0] for query in captured] == ["INSERT"]
        return
    assert await counted(database, **case) == outside


async def test_the_codes_own_transaction_statements_are_listed_and_marked(database: Any) -> None:
    async with capture_queries(database) as outside:
        await some_work(database)
    await Book.delete().aio_execute()
    await Author.delete().aio_execute()
    async with TransactionTestCase(database, allow_transactions=True), capture_queries(database) as inside:
        await some_work(database)
    assert [query.sql.split()[0] for query in outside.all if query.transaction] == ["BEGIN", "COMMIT"]
    assert [query.sql.split()[0] for query in inside.all if query.transaction] == ["SAVEPOINT", "RELEASE"]
    assert [query.transaction for query in inside.all] == [True, False, False, True, False]


async def test_a_test_transaction_opened_inside_the_capture_is_not_counted(database: Any) -> None:
    async with (
        capture_queries(database) as captured,
        TransactionTestCase(database, autosavepoint=True, reset_sequences=True),
    ):
        await Author.aio_create(name="ada")
    assert [query.sql.split()[0] for query in captured.all] == ["INSERT"]


async def test_raw_cursors_on_the_connection_and_sync_queries_are_counted(database: Any) -> None:
    async with TransactionTestCase(database) as case, capture_queries(database) as captured:
        async with database.aio_connection() as connection, connection.cursor() as cursor:
            await cursor.execute("SELECT 1")
        async with case.connection.cursor() as cursor:
            await cursor.execute("SELECT 2")
    assert [query.sql for query in captured] == ["SELECT 1", "SELECT 2"]
    async with capture_queries(database) as captured:
        async with database.aio_connection() as connection, connection.cursor() as cursor:
            await cursor.execute("SELECT 3")
        with database.allow_sync():
            database.execute_sql("SELECT 4")
    assert [query.sql for query in captured] == ["SELECT 3", "SELECT 4"]


async def test_aio_begin_inside_a_connection_opened_before_the_capture_is_counted(database: Any) -> None:
    async with database.aio_connection(), capture_queries(database) as captured, database.aio_connection():
        transaction = await database.aio_begin()
        await Author.aio_create(name="ada")
        await transaction.rollback()
    assert [(query.sql.split()[0], query.transaction) for query in captured.all] == [
        ("BEGIN", True),
        ("INSERT", False),
        ("ROLLBACK", True),
    ]
    assert await Author.select().aio_count() == 0


async def test_tasks_started_inside_are_counted_and_tasks_started_before_are_not(database: Any) -> None:
    go, done = asyncio.Event(), asyncio.Event()

    async def before() -> None:
        await go.wait()
        await database.aio_execute_sql("SELECT 'before'")
        done.set()

    async with TransactionTestCase(database):
        earlier = asyncio.create_task(before())
        async with capture_queries(database) as captured:
            go.set()
            await asyncio.wait_for(done.wait(), 30)
            await asyncio.gather(*(database.aio_execute_sql(f"SELECT {n}") for n in range(3)))
        await earlier
    assert sorted(query.sql for query in captured) == ["SELECT 0", "SELECT 1", "SELECT 2"]


async def test_another_database_and_statements_after_the_capture_are_not_counted(database: Any, tmp_path: Path) -> None:
    other = peewee_async.SqliteDatabase(str(tmp_path / "other.db"))
    try:
        async with capture_queries(database) as captured:
            await other.aio_execute_sql("SELECT 'other'")
            await database.aio_execute_sql("SELECT 'mine'")
        await database.aio_execute_sql("SELECT 'after'")
    finally:
        await other.aio_close()
    assert [query.sql for query in captured] == ["SELECT 'mine'"]
    assert not {"aio_connection", "execute_sql"} & vars(database).keys()


async def test_a_failed_statement_is_counted_and_a_refused_one_is_not(database: Any) -> None:
    async with TransactionTestCase(database, autosavepoint=True), capture_queries(database) as captured:
        with pytest.raises(peewee.DatabaseError):
            await database.aio_execute_sql("SELECT * FROM no_such_table")
        with pytest.raises(ValueError, match="sent COMMIT as SQL"):
            await database.aio_execute_sql("COMMIT")
    assert [query.sql for query in captured.all] == ["SELECT * FROM no_such_table"]


async def test_assert_num_queries_passes_and_fails_with_the_statements_numbered(database: Any) -> None:
    async with assert_num_queries(database, 1) as captured:
        await Author.aio_create(name="ada")
    assert isinstance(captured, CapturedQueries)
    with pytest.raises(AssertionError) as failure:
        async with assert_num_queries(database, 1), database.aio_atomic():
            await Author.select().where(Author.name == "ada").aio_get()
            await Author.aio_create(name="grace")
    await Author.delete().aio_execute()
    message = str(failure.value)
    assert message.splitlines()[0].startswith("2 queries ran on ")
    assert message.splitlines()[0].endswith(", 1 expected:")
    assert re.search(r"^ +1\. SELECT .*params: \['ada'", message, re.M)
    assert re.search(r"^ +2\. INSERT .*params: \['grace'\]", message, re.M)
    assert re.search(r"^ +- +(BEGIN|SAVEPOINT).*not counted", message, re.M)
    assert "password" not in message


async def test_a_failure_names_the_n_plus_one(database: Any) -> None:
    authors = [await Author.aio_create(name=f"author {n}") for n in range(4)]
    with pytest.raises(AssertionError) as failure:
        async with assert_max_num_queries(database, 2):
            await Author.select().aio_execute()
            for author in authors:
                await Author.select().where(Author.id == author.id).aio_get()
    await Author.delete().aio_execute()
    message = str(failure.value)
    assert ", at most 2 expected:" in message.splitlines()[0]
    assert "The same SELECT ran 4 times with different parameters (queries 2-5): N+1?" in message


async def test_a_failure_names_a_statement_read_again(database: Any) -> None:
    with pytest.raises(AssertionError, match=r"The same SELECT ran 3 times with the same parameters \(queries 1-3\)"):
        async with assert_num_queries(database, 1):
            for _ in range(3):
                await database.aio_execute_sql("SELECT 1")


async def test_assert_max_num_queries_passes_at_the_maximum(database: Any) -> None:
    async with assert_max_num_queries(database, 2):
        await database.aio_execute_sql("SELECT 1")
        await database.aio_execute_sql("SELECT 2")


async def test_assert_queries_match_at_least_one_or_exactly_count(database: Any) -> None:
    async with assert_queries_match(database, rf"^INSERT INTO {database.quote[0]}author{database.quote[0]}"):
        await Author.aio_create(name="ada")
    async with assert_queries_match(database, re.compile("select", re.I), count=2):
        await Author.select().aio_execute()
        await Author.select().aio_execute()
    with pytest.raises(AssertionError) as failure:
        async with assert_queries_match(database, "^DELETE", count=1):
            await Author.select().aio_execute()
            await Author.delete().aio_execute()
            await Author.delete().aio_execute()
    message = str(failure.value)
    assert message.splitlines()[0].startswith("2 queries matched '^DELETE' on ")
    assert message.splitlines()[0].endswith(", 1 expected; all that ran:")
    assert [line.endswith("<- matched") for line in message.splitlines()[1:4]] == [False, True, True]
    assert message.splitlines()[4].startswith("The same DELETE ran 2 times with the same parameters")
    with pytest.raises(AssertionError, match=r"0 queries matched 'UPDATE' on .*, at least 1 expected"):
        async with assert_queries_match(database, "UPDATE"):
            await Author.select().aio_execute()


async def test_the_assertions_decorate_async_functions_with_a_capture_per_call(database: Any) -> None:
    @assert_num_queries(database, 1)
    async def one_query(n: int) -> int:
        await database.aio_execute_sql(f"SELECT {n}")
        return n

    assert list(await asyncio.gather(one_query(1), one_query(2))) == [1, 2]

    @assert_num_queries(database, 0)
    async def too_many() -> None:
        await database.aio_execute_sql("SELECT 1")

    with pytest.raises(AssertionError, match="1 query ran on"):
        await too_many()
    with pytest.raises(TypeError, match="decorates async functions only"):
        assert_num_queries(database, 1)(lambda: None)  # type: ignore[type-var]


async def test_an_error_in_the_block_is_raised_and_not_hidden_by_the_assertion(database: Any) -> None:
    with pytest.raises(KeyError):
        async with assert_num_queries(database, 5):
            await database.aio_execute_sql("SELECT 1")
            raise KeyError("mine")
    assert "aio_connection" not in vars(database)


async def test_bad_arguments_are_refused_clearly(database: Any) -> None:
    for bad in (-1, 1.5, "2", True):
        with pytest.raises(TypeError, match=r"needs a number of queries \(an int, 0 or more\)"):
            assert_num_queries(database, bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="capture_queries\\(\\) needs a peewee-async database"):
        capture_queries(None)
    capture = capture_queries(database)
    async with capture:
        with pytest.raises(RuntimeError, match="open already"):
            async with capture:
                pass


async def test_captures_nest_and_both_see_the_inner_statements(database: Any) -> None:
    async with capture_queries(database) as outer:
        await database.aio_execute_sql("SELECT 1")
        async with capture_queries(database) as inner:
            await database.aio_execute_sql("SELECT 2")
    assert [query.sql for query in outer] == ["SELECT 1", "SELECT 2"]
    assert [query.sql for query in inner] == ["SELECT 2"]


async def test_a_batch_insert_is_one_statement(database: Any) -> None:
    async with assert_num_queries(database, 1):
        await Author.insert_many([{"name": f"a{n}"} for n in range(5)]).aio_execute()
    await Author.delete().aio_execute()
    if is_sqlite(database):
        return
    async with TransactionTestCase(database), assert_num_queries(database, 1):
        await Author.insert_many([{"name": f"a{n}"} for n in range(5)]).aio_execute()


async def test_a_decorator_made_before_the_database_is_initialised_works(database: Any) -> None:
    proxy = peewee.DatabaseProxy()

    @assert_num_queries(proxy, 1)
    async def one_query() -> None:
        await database.aio_execute_sql("SELECT 1")

    proxy.initialize(database)
    await one_query()
    with pytest.raises(TypeError, match="needs a peewee-async database"):
        assert_num_queries(peewee.SqliteDatabase(None), 1)
