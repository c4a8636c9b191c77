"""TransactionTestCase on every driver: the five steps, every way out of the block, and what must not survive."""

from __future__ import annotations

import asyncio
from typing import Any

import peewee
import peewee_async
import pytest

from peewee_async_testing import ConfigurationError, TransactionError, TransactionTestCase
from peewee_async_testing.connection import SharedConnection

from .helpers import acquired, admin, is_mysql, is_sqlite, mysql_admin, names
from .models import Author, Book


def needs_postgres(db: Any) -> None:
    if is_sqlite(db):
        pytest.skip("PostgreSQL and MySQL only: SQLite has no server that can kill or cancel a query")


def pid_sql(db: Any) -> str:
    """The statement that reads the connection's server process (PostgreSQL) or thread (MySQL)."""
    return "SELECT CONNECTION_ID()" if is_mysql(db) else "SELECT pg_backend_pid()"


async def backend_pid(db: Any) -> int:
    (pid,) = await db.aio_execute_sql(pid_sql(db), fetch_results=peewee_async.databases.fetchone)
    return int(pid)


def kill(db: Any, request: pytest.FixtureRequest, pid: int) -> None:
    """End the server process (thread) ``pid`` from another connection, as an administrator would."""
    if is_mysql(db):
        mysql_admin(request.getfixturevalue("mysql_server"), f"KILL {int(pid)}")
    else:
        admin(request.getfixturevalue("pg_server"), "SELECT pg_terminate_backend(%s)", (pid,), database=db.database)


def pristine(db: Any) -> dict[str, Any]:
    """The database object's own attributes: identical before and after a block."""
    return dict(vars(db))


async def assert_restored(db: Any, before: dict[str, Any]) -> None:
    after = vars(db)
    assert after.keys() == before.keys()
    assert all(after[key] is value for key, value in before.items())
    assert db.aio_connection.__func__ is type(db).aio_connection
    assert not await acquired(db)


async def test_block_sees_its_writes_and_keeps_nothing(database: Any) -> None:
    await Author.aio_create(name="before")
    async with TransactionTestCase(database) as case:
        assert isinstance(case, TransactionTestCase)
        await Author.aio_create(name="inside")
        await Author.update(name="renamed").where(Author.name == "before").aio_execute()
        assert await names() == ["inside", "renamed"]
    assert await names() == ["before"]
    await Author.delete().aio_execute()


async def test_every_query_runs_on_the_case_connection(database: Any) -> None:
    async with TransactionTestCase(database) as case:
        async with database.aio_connection() as connection:
            assert isinstance(connection, SharedConnection)
            assert connection is case.connection
        assert database.pool_backend.has_acquired_connections() or is_sqlite(database)
        if not is_sqlite(database):
            async with case.connection.cursor() as cursor:
                await cursor.execute(pid_sql(database))
                (pid,) = await cursor.fetchone()
            assert {await backend_pid(database) for _ in range(5)} == {pid}
    assert case.connection is None


async def test_patches_are_undone_and_the_connection_returned(database: Any) -> None:
    before = pristine(database)
    async with TransactionTestCase(database) as case:
        connection = case.connection
        assert vars(database).keys() > before.keys()
    await assert_restored(database, before)
    if is_sqlite(database):
        assert connection._connection is None  # the SQLite "pool" closes what it is given back


async def test_an_exception_propagates_and_nothing_survives(database: Any) -> None:
    before = pristine(database)
    with pytest.raises(RuntimeError, match="boom"):
        async with TransactionTestCase(database):
            await Author.aio_create(name="ada")
            raise RuntimeError("boom")
    await assert_restored(database, before)
    assert await names() == []


async def test_cancellation_rolls_back(database: Any) -> None:
    before = pristine(database)
    started = asyncio.Event()

    async def body() -> None:
        async with TransactionTestCase(database):
            await Author.aio_create(name="ada")
            started.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(body())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await assert_restored(database, before)
    assert await names() == []


async def test_a_timeout_during_a_query_rolls_back(database: Any) -> None:
    needs_postgres(database)
    before = pristine(database)
    sleep = "SELECT SLEEP(30)" if is_mysql(database) else "SELECT pg_sleep(30)"

    async def body() -> None:
        async with TransactionTestCase(database):
            await Author.aio_create(name="ada")
            await database.aio_execute_sql(sleep)

    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(body(), timeout=0.5)
    await assert_restored(database, before)
    activity = "information_schema.PROCESSLIST WHERE INFO" if is_mysql(database) else "pg_stat_activity WHERE query"
    sleeping = await database.aio_execute_sql(
        f"SELECT count(*) FROM {activity} = %s", (sleep,), fetch_results=peewee_async.databases.fetchone
    )
    assert sleeping[0] == 0, "the timed-out query still runs on the server, holding the block's locks"
    assert await names() == []


async def test_a_connection_killed_by_the_server_is_discarded(database: Any, request: pytest.FixtureRequest) -> None:
    needs_postgres(database)
    before = pristine(database)
    async with TransactionTestCase(database):
        await Author.aio_create(name="ada")
        victim = await backend_pid(database)
        kill(database, request, victim)
    await assert_restored(database, before)
    assert await names() == []
    assert await backend_pid(database) != victim


async def test_the_server_killing_the_connection_mid_block_keeps_the_test_error(database: Any) -> None:
    needs_postgres(database)
    with pytest.raises(peewee.PeeweeException):
        async with TransactionTestCase(database):
            await Author.aio_create(name="ada")
            if is_mysql(database):
                await database.aio_execute_sql(f"KILL {await backend_pid(database)}")
            else:
                await database.aio_execute_sql("SELECT pg_terminate_backend(pg_backend_pid())")
    assert not await acquired(database)
    assert await names() == []


async def commit_on_the_driver_connection(case: TransactionTestCase) -> None:
    """COMMIT on the driver's own connection, which bypasses every guard (as nothing else can commit)."""
    async with case.connection.raw.cursor() as cursor:
        await cursor.execute("COMMIT")


async def test_code_that_commits_is_reported_not_hidden(database: Any) -> None:
    with pytest.raises(TransactionError, match="ran COMMIT or ROLLBACK itself"):
        async with TransactionTestCase(database) as case:
            await Author.aio_create(name="committed")
            await commit_on_the_driver_connection(case)
    assert await names() == ["committed"]
    await Author.delete().aio_execute()
    assert not await acquired(database)


async def test_a_failed_rollback_does_not_hide_the_test_exception(database: Any) -> None:
    with pytest.raises(KeyError) as raised:
        async with TransactionTestCase(database) as case:
            await Author.aio_create(name="committed")
            await commit_on_the_driver_connection(case)
            raise KeyError("the test's own failure")
    assert any("could not undo the block" in note for note in raised.value.__notes__)
    await Author.delete().aio_execute()


@pytest.mark.parametrize("method", ["aio_atomic", "aio_transaction"])
async def test_app_transactions_raise_value_error(database: Any, method: str) -> None:
    async with TransactionTestCase(database):
        with pytest.raises(ValueError, match=f"{method}\\(\\) is disabled inside TransactionTestCase"):
            async with getattr(database, method)():
                pass
        await Author.aio_create(name="still usable")
    assert await names() == []


@pytest.mark.parametrize("method", ["aio_begin", "aio_savepoint"])
async def test_begin_and_savepoint_raise_value_error(database: Any, method: str) -> None:
    async with TransactionTestCase(database):
        with pytest.raises(ValueError, match=f"{method}\\(\\) is disabled"):
            await getattr(database, method)()


async def test_get_or_create_is_refused_for_now(database: Any) -> None:
    """A documented limitation: aio_get_or_create opens aio_atomic() for a new row."""
    async with TransactionTestCase(database):
        with pytest.raises(ValueError, match="aio_atomic"):
            await Author.aio_get_or_create(name="ada")
    assert await names() == []


async def test_after_the_block_app_transactions_work_again(database: Any) -> None:
    async with TransactionTestCase(database):
        pass
    async with database.aio_atomic():
        await Author.aio_create(name="ada")
    assert await names() == ["ada"]
    await Author.delete().aio_execute()


async def test_the_same_case_can_be_entered_again_after_exit(database: Any) -> None:
    case = TransactionTestCase(database)
    for name in ("one", "two"):
        async with case:
            await Author.aio_create(name=name)
            assert await names() == [name]
    assert await names() == []


async def test_as_decorator_each_call_gets_a_fresh_transaction(database: Any) -> None:
    @TransactionTestCase(database)
    async def create(name: str) -> list[str]:
        await Author.aio_create(name=name)
        return await names()

    assert await create("ada") == ["ada"]
    assert await create("grace") == ["grace"]
    assert create.__name__ == "create"
    assert await names() == []


async def test_decorating_a_sync_function_is_a_type_error(database: Any) -> None:
    with pytest.raises(TypeError, match="decorates async functions"):

        @TransactionTestCase(database)  # type: ignore[arg-type]  # the mistake under test
        def sync() -> None:  # pragma: no cover - never called
            pass


async def test_fifty_gathered_queries_share_the_connection(database: Any) -> None:
    async with TransactionTestCase(database):
        authors = await asyncio.gather(*(Author.aio_create(name=f"a{i}") for i in range(50)))
        await asyncio.gather(*(Book.aio_create(title=f"t{i}", author=author) for i, author in enumerate(authors)))
        counts = await asyncio.gather(*(Book.select().where(Book.author == a).aio_count() for a in authors))
        assert counts == [1] * 50
        selects = await asyncio.gather(*(Author.select().where(Author.name == f"a{i}").aio_get() for i in range(50)))
        assert [author.name for author in selects] == [f"a{i}" for i in range(50)]
    assert await names() == []


async def test_an_unconnected_pool_is_connected_first(database: Any) -> None:
    await database.aio_close()
    assert not database.is_connected
    async with TransactionTestCase(database):
        await Author.aio_create(name="ada")
    assert database.is_connected
    assert await names() == []


async def test_a_database_proxy_is_accepted(database: Any) -> None:
    proxy = peewee.DatabaseProxy()
    proxy.initialize(database)
    async with TransactionTestCase(proxy) as case:
        assert case.database is database
        await Author.aio_create(name="ada")
    assert await names() == []


def test_what_is_not_a_peewee_async_database_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="needs a peewee-async database"):
        TransactionTestCase(peewee.SqliteDatabase(":memory:"))
    with pytest.raises(ConfigurationError, match=r"proxy\.initialize"):
        TransactionTestCase(peewee.DatabaseProxy())
    with pytest.raises(ConfigurationError, match=r"database\.init"):
        TransactionTestCase(peewee_async.PostgresqlDatabase(None))
