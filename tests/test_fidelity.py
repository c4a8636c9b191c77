"""Inside a block, the code under test meets peewee-async's own rules and errors, and never hangs."""

from __future__ import annotations

import asyncio
from typing import Any

import peewee
import pytest

from peewee_async_testing import TransactionError, TransactionTestCase
from peewee_async_testing import connection as shared_connection

from .helpers import is_sqlite, names, only_postgres
from .models import Author


def needs_postgres(db: Any) -> None:
    if is_sqlite(db):
        pytest.skip("PostgreSQL only: SQLite does not abort a transaction after an error")


@pytest.mark.parametrize("method", ["aio_begin", "aio_savepoint"])
async def test_begin_and_savepoint_need_aio_connection_as_in_peewee_async(database: Any, method: str) -> None:
    with pytest.raises(peewee.OperationalError, match="within the aio_connection context manager") as production:
        await getattr(database, method)()
    async with TransactionTestCase(database, allow_transactions=True):
        with pytest.raises(peewee.OperationalError) as inside:
            await getattr(database, method)()
        assert str(inside.value) == str(production.value)
        async with database.aio_atomic():  # aio_atomic() opens aio_connection() itself, as peewee-async's does
            savepoint = await getattr(database, method)()
            await Author.aio_create(name="kept")
            await savepoint.commit()
        assert await names() == ["kept"]
    assert await names() == []


async def test_aio_savepoint_outside_any_transaction_raises_as_in_production(database: Any) -> None:
    only_postgres(database, "MySQL takes a SAVEPOINT outside a transaction, and SQLite opens one")
    async with database.aio_connection():
        with pytest.raises(Exception, match="SAVEPOINT can only be used in transaction blocks") as production:
            await database.aio_savepoint()
    assert type(production.value).__name__ == "NoActiveSqlTransaction"  # the driver's own error, unwrapped
    async with TransactionTestCase(database, allow_transactions=True), database.aio_connection():
        with pytest.raises(type(production.value), match="SAVEPOINT can only be used in transaction blocks") as raised:
            await database.aio_savepoint()
        assert isinstance(raised.value, TransactionError)
        begun = await database.aio_begin()  # inside a transaction it works, as in production
        await (await database.aio_savepoint()).rollback()
        await begun.rollback()


async def error_after_integrity_error(database: Any) -> type[BaseException]:
    """The class of the error a statement raises after a caught IntegrityError inside aio_atomic()."""
    async with database.aio_atomic():
        await Author.aio_create(name="ada")
        with pytest.raises(peewee.IntegrityError):
            await Author.aio_create(name="ada")
        with pytest.raises(peewee.DatabaseError) as raised:
            await Author.select().aio_count()
    return type(raised.value)


async def test_after_an_integrity_error_in_aio_atomic_the_next_statement_raises_as_in_production(
    database: Any,
) -> None:
    only_postgres(database, "MySQL rolls back only the failed statement, and goes on")
    production = await error_after_integrity_error(database)  # the block's COMMIT rolls the aborted work back
    assert await names() == []
    async with TransactionTestCase(database, allow_transactions=True):
        inside = await error_after_integrity_error(database)
        assert await names() == []
    assert issubclass(production, peewee.InternalError)
    assert issubclass(inside, production)
    assert issubclass(inside, TransactionError)


async def test_a_commit_of_an_aborted_sql_transaction_rolls_it_back_as_the_server_does(database: Any) -> None:
    only_postgres(database, "MySQL rolls back only the failed statement: its COMMIT commits the rest")
    async with TransactionTestCase(database, allow_transactions=True):
        await Author.aio_create(name="before")
        await database.aio_execute_sql("BEGIN")
        await Author.aio_create(name="in the transaction")
        with pytest.raises(peewee.IntegrityError):
            await Author.aio_create(name="before")
        await database.aio_execute_sql("COMMIT")
        assert await names() == ["before"]
    assert await names() == []


async def test_aio_close_inside_a_block_does_not_hide_the_block_error(database: Any) -> None:
    with pytest.raises(KeyError, match="the block's own error") as raised:
        async with TransactionTestCase(database):
            await Author.aio_create(name="ada")
            await database.aio_close()
            raise KeyError("the block's own error")
    notes = getattr(raised.value, "__notes__", [])
    assert all("could not undo the block" in note for note in notes)
    await database.aio_connect()
    assert await names() == []


async def test_aio_close_inside_a_block_ends_it_cleanly(database: Any) -> None:
    async with TransactionTestCase(database):
        await Author.aio_create(name="ada")
        await database.aio_close()
    await database.aio_connect()
    assert await names() == []


async def test_a_task_awaited_from_inside_aio_atomic_fails_clearly_instead_of_waiting_for_ever(
    database: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared_connection, "TURN_TIMEOUT", 0.5)
    async with TransactionTestCase(database, allow_transactions=True):
        go = asyncio.Event()

        async def plain_query() -> int:
            await go.wait()
            return int(await Author.select().aio_count())

        other = asyncio.create_task(plain_query(), name="the other task")

        async def app_code() -> int:
            async with database.aio_atomic():
                await Author.aio_create(name="ada")
                go.set()
                return await other  # in production the other task runs on a connection of its own

        with pytest.raises(peewee.OperationalError, match=r"task 'the other task' waited 0.5 s .* to leave") as raised:
            await asyncio.wait_for(app_code(), timeout=60)
        assert isinstance(raised.value, TransactionError)
        assert await names() == []
    assert await names() == []


async def test_a_failure_of_the_exit_never_hides_the_block_error(
    database: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = database.pool_backend
    release = pool.release

    async def failing_release(connection: Any) -> None:
        raise RuntimeError("the pool refused the connection back")

    with pytest.raises(KeyError, match="the block's own error") as raised:
        async with TransactionTestCase(database) as case:
            raw = case.connection.raw
            await Author.aio_create(name="ada")
            monkeypatch.setattr(pool, "release", failing_release)  # a fault injected into the exit
            raise KeyError("the block's own error")
    monkeypatch.undo()
    await release(raw)
    assert any("the pool refused the connection back" in note for note in raised.value.__notes__)
    assert await names() == []
