"""capture_queries on the paths less taken: aiopg's callproc, psycopg 3's composed SQL, aiosqlite's execute() as
a context manager, aiomysql's executemany and statements in its syntax, odd SQL and parameters, peewee-async's
compound methods, nested captures of the synchronous path, and captures that end cancelled or in another task."""

from __future__ import annotations

import asyncio
from typing import Any

import peewee_async
import pytest

from peewee_async_testing import TransactionTestCase, capture_queries

from .helpers import is_mysql, is_sqlite
from .models import Author, Book


async def test_nested_captures_record_a_sync_statement_once(database: Any) -> None:
    async with capture_queries(database) as outer, capture_queries(database) as inner:
        with database.allow_sync():
            database.execute_sql("SELECT 1")
    assert [query.sql for query in outer] == [query.sql for query in inner] == ["SELECT 1"]


async def test_aiopg_callproc_is_counted_inside_and_outside_a_test_transaction(database: Any) -> None:
    if type(database) is not peewee_async.PostgresqlDatabase:
        pytest.skip("callproc is aiopg's")
    async with (
        capture_queries(database) as outside,
        database.aio_connection() as connection,
        connection.cursor() as cursor,
    ):
        await cursor.callproc("abs", (-1,))
    async with (
        TransactionTestCase(database) as case,
        capture_queries(database) as inside,
        case.connection.cursor() as cursor,
    ):
        await cursor.callproc("abs", (-1,))
    assert [query.sql for query in outside] == [query.sql for query in inside] == ["SELECT * FROM abs(%s)"]
    assert outside[0].params == inside[0].params == (-1,)


async def test_none_and_dict_params_and_bytes_sql_are_recorded(database: Any) -> None:
    async with capture_queries(database) as captured:
        await database.aio_execute_sql("SELECT 1", None)
        if not is_sqlite(database):
            await database.aio_execute_sql("SELECT %(x)s", {"x": 1})
            async with database.aio_connection() as connection, connection.cursor() as cursor:
                await cursor.execute(b"SELECT 2")
    expected = ["SELECT 1"] if is_sqlite(database) else ["SELECT 1", "SELECT %(x)s", "SELECT 2"]
    assert [query.sql for query in captured] == expected
    assert is_sqlite(database) or "params: {'x': 1}" in captured.report()


async def test_psycopg_composed_sql_is_shown_as_its_text(database: Any) -> None:
    if type(database) is not peewee_async.Psycopg3Database:
        pytest.skip("psycopg 3")
    from psycopg import sql

    statement = sql.SQL("SELECT {}").format(sql.Literal(5))
    async with capture_queries(database) as outside, database.aio_connection() as connection:
        await connection.execute(statement)
    async with TransactionTestCase(database) as case, capture_queries(database) as inside:
        await case.connection.execute(statement)
    assert [query.sql for query in outside] == [query.sql for query in inside] == ["SELECT 5"]


async def test_aiosqlite_execute_as_a_context_manager_is_counted(database: Any) -> None:
    if not is_sqlite(database):
        pytest.skip("aiosqlite")
    async with (
        capture_queries(database) as outside,
        database.aio_connection() as connection,
        connection.execute("SELECT 1") as cursor,
    ):
        assert await cursor.fetchall() == [(1,)]
    async with (
        TransactionTestCase(database) as case,
        capture_queries(database) as inside,
        case.connection.execute("SELECT 1") as cursor,
    ):
        assert await cursor.fetchall() == [(1,)]
    assert [query.sql for query in outside] == [query.sql for query in inside] == ["SELECT 1"]


async def test_compound_methods_count_the_same_inside_and_outside(database: Any) -> None:
    async def work() -> list[str]:
        async with capture_queries(database) as captured:
            await Author.aio_get_or_create(name="ada")
            await Author.select().aio_scalar()
            await Author.select().aio_count()
            await Author.select().aio_exists()
            await peewee_async.aio_prefetch(Author.select(), Book.select())
        return [query.sql.split()[0] for query in captured]

    outside = await work()
    await Author.delete().aio_execute()
    async with TransactionTestCase(database, allow_transactions=True):
        inside = await work()
    assert outside == inside == ["SELECT", "INSERT", "SELECT", "SELECT", "SELECT", "SELECT", "SELECT"]


async def test_a_capture_ended_in_another_task_or_cancelled_leaks_no_patch(database: Any) -> None:
    capture = capture_queries(database)
    await asyncio.create_task(capture.__aenter__())
    await capture.__aexit__(None, None, None)
    assert "aio_connection" not in vars(database)
    assert "execute_sql" not in vars(database)

    async def block() -> None:
        async with capture_queries(database):
            await asyncio.Event().wait()

    task = asyncio.create_task(block())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "aio_connection" not in vars(database)
    assert "execute_sql" not in vars(database)


async def test_a_psycopg_cursor_used_without_async_with_is_counted(database: Any) -> None:
    if type(database) is not peewee_async.Psycopg3Database:
        pytest.skip("psycopg 3 hands out its cursor itself")
    async with capture_queries(database) as captured, database.aio_connection() as connection:
        cursor = connection.cursor()
        await cursor.execute("SELECT 1")
        assert await cursor.fetchall() == [(1,)]
        await cursor.close()
        async with connection.cursor() as cursor:
            await cursor.execute("SELECT 2")
    assert [query.sql for query in captured] == ["SELECT 1", "SELECT 2"]


async def test_aiomysql_executemany_lastrowid_and_two_statements_are_counted(database: Any) -> None:
    if not is_mysql(database):
        pytest.skip("aiomysql")

    async def work(connection: Any) -> int:
        async with connection.cursor() as cursor:
            await cursor.executemany("INSERT INTO `author` (`name`) VALUES (%s)", [("ada",), ("grace",)])
            first = int(cursor.lastrowid)  # aiomysql's cursor, reached through the capture's
            await cursor.execute("SELECT 1; SELECT 2")  # one round trip (CLIENT.MULTI_STATEMENTS)
            assert await cursor.fetchall() == ((1,),)
            assert await cursor.nextset()
            assert await cursor.fetchall() == ((2,),)
        return first

    async with capture_queries(database) as outside, database.aio_connection() as connection:
        first = await work(connection)
    assert first == (await Author.aio_get(name="ada")).id
    await Author.delete().aio_execute()
    async with TransactionTestCase(database) as case, capture_queries(database) as inside:
        await work(case.connection)
    expected = ["INSERT INTO `author` (`name`) VALUES (%s)", "SELECT 1; SELECT 2"]
    assert [query.sql for query in outside] == [query.sql for query in inside] == expected
    assert outside[0].params == [("ada",), ("grace",)]


async def test_mysql_transaction_statements_are_marked_in_its_syntax(database: Any) -> None:
    if not is_mysql(database):
        pytest.skip("MySQL's syntax")
    async with (
        capture_queries(database) as captured,
        database.aio_connection() as connection,
        connection.cursor() as cursor,
    ):
        await cursor.execute("START TRANSACTION")
        await cursor.execute("SELECT '\\\\'; COMMIT")  # a string (its backslash escaped), then a COMMIT
        await cursor.execute("SET autocommit = 1")
        await cursor.execute("SELECT 1 # ; COMMIT")  # a comment to the end of the line
    assert [(query.sql, query.transaction) for query in captured.all] == [
        ("START TRANSACTION", True),
        ("SELECT '\\\\'; COMMIT", False),  # a statement that counts, and one that does not
        ("SET autocommit = 1", True),
        ("SELECT 1 # ; COMMIT", False),
    ]
    assert [query.sql for query in captured] == ["SELECT '\\\\'; COMMIT", "SELECT 1 # ; COMMIT"]
