"""What a block leaves on its connection, and how its exit copes when the connection breaks, on a pool of one.

A pool of one connection is where both show: the next block gets the very connection the last one gave back,
and an exit that needs a second connection waits for ever.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import peewee
import peewee_async
import psycopg
import pytest
import pytest_asyncio
from peewee_async.databases import fetchone

from peewee_async_testing import PostgresServer, TransactionError, TransactionTestCase

from .helpers import acquired, admin

#: Generous: an exit that works takes milliseconds; one that waits for a second connection never ends.
BOUND = 30.0


@pytest_asyncio.fixture(params=["aiopg", "psycopg"])
async def one_connection(
    request: pytest.FixtureRequest, pg_server: PostgresServer, pg_database: str
) -> AsyncIterator[Any]:
    """A database of the driver under test whose pool holds one connection at most."""
    params = pg_server.connect_params(pg_database)
    if request.param == "aiopg":
        db = peewee_async.PostgresqlDatabase(**params, pool_params={"minsize": 1, "maxsize": 1})
    else:
        db = peewee_async.Psycopg3Database(**params, pool_params={"min_size": 1, "max_size": 1})
    await db.aio_connect()
    yield db
    assert not await acquired(db), "the block left the only connection acquired"
    await db.aio_close()


async def one(db: Any, sql: str, params: tuple[Any, ...] = ()) -> Any:
    return (await db.aio_execute_sql(sql, params, fetch_results=fetchone))[0]


def advisory_locks(server: PostgresServer, database: str) -> int:
    """How many advisory locks sessions hold on ``database``."""
    return int(
        admin(
            server,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
            "AND database = (SELECT oid FROM pg_database WHERE datname = %s)",
            (database,),
        )[0][0]
    )


async def test_a_session_advisory_lock_is_released_with_the_block(
    one_connection: Any, pg_server: PostgresServer, pg_database: str
) -> None:
    async with TransactionTestCase(one_connection):
        await one_connection.aio_execute_sql("SELECT pg_advisory_lock(4242)")
        assert advisory_locks(pg_server, pg_database) == 1
    assert advisory_locks(pg_server, pg_database) == 0, "the pool's connection still holds the test's lock"


async def test_a_prepared_statement_is_deallocated_with_the_block(one_connection: Any) -> None:
    for _ in range(2):  # the same connection both times: the pool has only one
        async with TransactionTestCase(one_connection):
            await one_connection.aio_execute_sql("PREPARE pwat_stmt AS SELECT 1")
            assert await one(one_connection, "SELECT count(*) FROM pg_prepared_statements") == 1


async def test_the_drivers_own_prepared_statements_still_work_after_the_block(one_connection: Any) -> None:
    """psycopg 3 prepares a query run often enough and remembers its name: DEALLOCATE ALL must make it forget."""
    for _ in range(3):
        async with TransactionTestCase(one_connection) as case:
            if isinstance(one_connection, peewee_async.Psycopg3Database):  # peewee-async's cursors never prepare
                async with psycopg.AsyncCursor(case.connection) as cursor:
                    await cursor.execute("SELECT %s::int", (1,), prepare=True)
            assert await one(one_connection, "SELECT 1") == 1


async def test_a_connection_killed_in_the_block_is_replaced_without_a_second_one(
    one_connection: Any, pg_server: PostgresServer, pg_database: str
) -> None:
    async def block() -> None:
        async with TransactionTestCase(one_connection):
            pid = await one(one_connection, "SELECT pg_backend_pid()")
            admin(pg_server, "SELECT pg_terminate_backend(%s, 5000)", (pid,), database=pg_database)
            await one_connection.aio_execute_sql("SELECT 1")

    with pytest.raises(peewee.OperationalError):  # the real error, not the pool's timeout
        await asyncio.wait_for(block(), BOUND)
    async with TransactionTestCase(one_connection):
        assert await one(one_connection, "SELECT 1") == 1


async def test_a_connection_killed_after_the_last_query_is_replaced_without_a_second_one(
    one_connection: Any, pg_server: PostgresServer, pg_database: str
) -> None:
    async def block() -> int:
        async with TransactionTestCase(one_connection):
            pid = await one(one_connection, "SELECT pg_backend_pid()")
            admin(pg_server, "SELECT pg_terminate_backend(%s, 5000)", (pid,), database=pg_database)
        return int(pid)

    victim = await asyncio.wait_for(block(), BOUND)
    assert await one(one_connection, "SELECT pg_backend_pid()") != victim


async def test_a_failure_to_end_the_broken_connections_process_keeps_the_block_error(
    one_connection: Any, pg_server: PostgresServer, pg_database: str
) -> None:
    """The server refuses new connections: the exit cannot replace the broken one, and says so on the block's error."""

    async def block() -> None:
        async with TransactionTestCase(one_connection):
            pid = await one(one_connection, "SELECT pg_backend_pid()")
            admin(pg_server, f'ALTER DATABASE "{pg_database}" WITH ALLOW_CONNECTIONS false')
            admin(pg_server, "SELECT pg_terminate_backend(%s, 5000)", (pid,), database="postgres")
            await one_connection.aio_execute_sql("SELECT 1")

    try:
        with pytest.raises(peewee.OperationalError) as raised:
            await asyncio.wait_for(block(), BOUND)
    finally:
        admin(pg_server, f'ALTER DATABASE "{pg_database}" WITH ALLOW_CONNECTIONS true')
    assert any("could not end" in note for note in getattr(raised.value, "__notes__", ())), raised.value
    async with TransactionTestCase(one_connection):
        assert await one(one_connection, "SELECT 1") == 1


async def test_a_broken_connection_that_cannot_be_replaced_fails_a_passing_block(
    one_connection: Any, pg_server: PostgresServer, pg_database: str
) -> None:
    async def block() -> None:
        async with TransactionTestCase(one_connection):
            pid = await one(one_connection, "SELECT pg_backend_pid()")
            admin(pg_server, f'ALTER DATABASE "{pg_database}" WITH ALLOW_CONNECTIONS false')
            admin(pg_server, "SELECT pg_terminate_backend(%s, 5000)", (pid,), database="postgres")

    try:
        with pytest.raises(TransactionError, match="could not end"):
            await asyncio.wait_for(block(), BOUND)
    finally:
        admin(pg_server, f'ALTER DATABASE "{pg_database}" WITH ALLOW_CONNECTIONS true')


async def test_a_block_nested_in_a_test_leaves_the_tests_session_alone(
    one_connection: Any, pg_server: PostgresServer, pg_database: str
) -> None:
    """Only a test's own case lets the session go: a block the code under test nests keeps the test's lock."""
    async with TransactionTestCase(one_connection):
        await one_connection.aio_execute_sql("SELECT pg_advisory_lock(4242)")
        async with TransactionTestCase(one_connection) as inner:
            assert inner.nested
        assert advisory_locks(pg_server, pg_database) == 1
    assert advisory_locks(pg_server, pg_database) == 0


@pytest_asyncio.fixture
async def loop_pool(pg_server: PostgresServer, pg_database: str) -> AsyncIterator[Any]:
    """The plugin's pool of the running loop, on aiopg (where a ROLLBACK's reply is left to be read later)."""
    from peewee_async_testing.pools import pool_on_running_loop

    db = peewee_async.PostgresqlDatabase(
        **pg_server.connect_params(pg_database), pool_params={"minsize": 1, "maxsize": 1}
    )
    async with pool_on_running_loop(db) as pool:
        yield pool


async def backend_pid(connection: Any) -> int:
    async with connection.cursor() as cursor:
        await cursor.execute("SELECT pg_backend_pid()")
        return int((await cursor.fetchone())[0])


async def test_a_rollback_whose_reply_comes_late_is_read_before_the_connection_serves_again(loop_pool: Any) -> None:
    from peewee_async_testing.connection import SharedConnection

    kept = await loop_pool.kept_connection()
    pid = await backend_pid(kept)
    await loop_pool.roll_back(SharedConnection(kept, postgres=True), "SELECT pg_sleep(0.2)")
    again = await loop_pool.kept_connection()  # waits for the reply, which comes 0.2 s after the ROLLBACK's
    assert again is kept
    assert await backend_pid(again) == pid


async def test_a_connection_that_its_rollback_leaves_in_a_transaction_is_not_kept(loop_pool: Any) -> None:
    from peewee_async_testing.connection import SharedConnection

    kept = await loop_pool.kept_connection()
    pid = await backend_pid(kept)
    await loop_pool.roll_back(SharedConnection(kept, postgres=True), "BEGIN")
    fresh = await loop_pool.kept_connection()
    assert kept.closed
    assert await backend_pid(fresh) != pid
