"""Blocks and tasks on every driver: each task's block is its own, a task never outlives its block into another,
and a synchronous query inside a block fails at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from peewee_async_testing import TransactionError, TransactionTestCase

from .helpers import is_sqlite, names
from .models import Author

#: Generous: only reached when a guarantee is broken (a hang).
DEADLINE = 30


def needs_two_writers(db: Any) -> None:
    if is_sqlite(db):
        pytest.skip("SQLite lets one connection write at a time: two open write transactions wait on each other")


def unpatched(db: Any, before: dict[str, Any]) -> bool:
    after = vars(db)
    return after.keys() == before.keys() and all(after[key] is value for key, value in before.items())


async def bounded(awaitable: Awaitable[Any]) -> Any:
    return await asyncio.wait_for(awaitable, DEADLINE)


class Meeting:
    """``parties`` tasks wait in :meth:`arrive` until all have arrived (asyncio.Barrier, which Python 3.10 lacks)."""

    def __init__(self, parties: int) -> None:
        self._left, self._all = parties, asyncio.Event()

    async def arrive(self) -> None:
        self._left -= 1
        if not self._left:
            self._all.set()
        await self._all.wait()


# -- each task's block is its own --------------------------------------------------------------------------------------


async def test_gathered_calls_of_one_decorated_function_keep_to_their_own(database: Any) -> None:
    needs_two_writers(database)
    before, both_wrote = dict(vars(database)), Meeting(2)

    @TransactionTestCase(database)
    async def write(name: str) -> list[str]:
        await Author.aio_create(name=name)
        await both_wrote.arrive()
        return await names()

    assert await bounded(asyncio.gather(write("one"), write("two"))) == [["one"], ["two"]]
    assert await names() == []
    assert unpatched(database, before)


@pytest.mark.parametrize("first_to_end", ["first", "second"])
async def test_sibling_blocks_end_in_any_order_and_keep_nothing(database: Any, first_to_end: str) -> None:
    needs_two_writers(database)
    before, both_open = dict(vars(database)), Meeting(2)
    ended: dict[str, asyncio.Event] = {"first": asyncio.Event(), "second": asyncio.Event()}

    async def block(name: str, other: str) -> list[str]:
        try:
            async with TransactionTestCase(database):
                await Author.aio_create(name=name)
                await both_open.arrive()
                if name != first_to_end:
                    await ended[other].wait()  # the other block ends while this one is open
                    await Author.aio_create(name=f"{name} after")
                return await names()
        finally:
            ended[name].set()

    seen = await bounded(asyncio.gather(block("first", "second"), block("second", "first")))
    last = "second" if first_to_end == "first" else "first"
    expected = {first_to_end: [first_to_end], last: sorted([last, f"{last} after"])}
    assert list(seen) == [expected["first"], expected["second"]]
    assert await names() == []
    assert unpatched(database, before)


async def test_cancelling_one_sibling_leaves_the_other_its_own(database: Any) -> None:
    needs_two_writers(database)
    before, both_open, cancelled = dict(vars(database)), Meeting(3), asyncio.Event()

    async def doomed() -> None:
        async with TransactionTestCase(database):
            await Author.aio_create(name="doomed")
            await both_open.arrive()
            await asyncio.Event().wait()  # until cancelled

    async def survivor() -> list[str]:
        async with TransactionTestCase(database):
            await Author.aio_create(name="survivor")
            await both_open.arrive()
            await cancelled.wait()
            await Author.aio_create(name="survivor after")
            return await names()

    victim, other = asyncio.create_task(doomed()), asyncio.create_task(survivor())
    await bounded(both_open.arrive())
    victim.cancel()
    with pytest.raises(asyncio.CancelledError):
        await bounded(victim)
    cancelled.set()
    assert await bounded(other) == ["survivor", "survivor after"]
    assert await names() == []
    assert unpatched(database, before)


Requests = asyncio.Queue[tuple[Callable[[], Awaitable[Any]], "asyncio.Future[Any]"]]


async def server_task(requests: Requests) -> None:
    """An app's server loop, started before any block: it runs the queries it is handed, in a task of its own."""
    while True:
        query, result = await requests.get()
        try:
            result.set_result(await query())
        except Exception as error:
            result.set_exception(error)


async def ask(requests: Requests, query: Callable[[], Awaitable[Any]]) -> Any:
    result = asyncio.get_running_loop().create_future()
    await requests.put((query, result))
    return await bounded(result)


async def test_a_task_outside_any_block_uses_the_one_open_block(database: Any) -> None:
    requests: Requests = asyncio.Queue()
    server = asyncio.create_task(server_task(requests))
    try:
        async with TransactionTestCase(database):
            await ask(requests, lambda: Author.aio_create(name="from the server"))
            assert await names() == ["from the server"]
        assert await names() == []
    finally:
        server.cancel()


async def test_a_task_outside_any_block_is_refused_when_several_are_open(database: Any) -> None:
    needs_two_writers(database)
    requests: Requests = asyncio.Queue()
    server = asyncio.create_task(server_task(requests))
    both_open, asked = Meeting(3), asyncio.Event()

    async def block(name: str) -> list[str]:
        async with TransactionTestCase(database):
            await Author.aio_create(name=name)
            await both_open.arrive()
            await asked.wait()
            return await names()

    try:
        blocks = asyncio.gather(block("one"), block("two"))
        await bounded(both_open.arrive())
        with pytest.raises(TransactionError, match="2 TransactionTestCase blocks are open"):
            await ask(requests, lambda: Author.aio_create(name="from the server"))
        asked.set()
        assert await bounded(blocks) == [["one"], ["two"]]
    finally:
        asked.set()
        server.cancel()
    assert await names() == []


async def test_two_blocks_nested_in_one_are_not_open_at_once_in_sibling_tasks(database: Any) -> None:
    """Nested blocks share the outer block's connection: two at once would see, and undo, each other's rows."""
    first_open, second_tried = asyncio.Event(), asyncio.Event()

    async def first() -> list[str]:
        async with TransactionTestCase(database):
            await Author.aio_create(name="first")
            first_open.set()
            await second_tried.wait()
            return await names()

    async def second() -> None:
        await first_open.wait()
        try:
            async with TransactionTestCase(database):
                await Author.aio_create(name="second")
        finally:
            second_tried.set()

    async with TransactionTestCase(database):
        await Author.aio_create(name="outer")
        seen, refused = await bounded(asyncio.gather(first(), second(), return_exceptions=True))
        assert seen == ["first", "outer"]
        assert isinstance(refused, TransactionError)
        assert "nested in the same block" in str(refused)
        assert await names() == ["outer"]
    assert await names() == []


# -- a task started in a block ends with it ----------------------------------------------------------------------------


async def test_a_task_that_outlives_its_block_never_writes_into_a_later_one(database: Any) -> None:
    go, wrote = asyncio.Event(), asyncio.get_running_loop().create_future()

    async def straggler() -> None:
        await go.wait()
        try:
            await Author.aio_create(name="straggler")
        except BaseException as error:
            wrote.set_exception(error)
        else:
            wrote.set_result(None)

    async with TransactionTestCase(database):
        task = asyncio.create_task(straggler())
    async with TransactionTestCase(database):
        go.set()
        with pytest.raises(TransactionError, match="outlived"):
            await bounded(wrote)
        assert await names() == []
    await bounded(task)
    assert await names() == []


async def test_a_task_started_in_an_inner_block_does_not_fall_through_to_the_outer(database: Any) -> None:
    go, wrote = asyncio.Event(), asyncio.get_running_loop().create_future()

    async def straggler() -> None:
        await go.wait()
        try:
            await Author.aio_create(name="straggler")
        except BaseException as error:
            wrote.set_exception(error)
        else:
            wrote.set_result(None)

    async with TransactionTestCase(database):
        async with TransactionTestCase(database):
            task = asyncio.create_task(straggler())
        go.set()
        with pytest.raises(TransactionError, match="outlived"):
            await bounded(wrote)
        assert await names() == []
    await bounded(task)


async def test_a_task_of_a_block_writes_into_the_block_nested_in_it_since(database: Any) -> None:
    """Under the plugin: a server task that knows the session's shared block, and the test's block nested in it."""
    go, wrote = asyncio.Event(), asyncio.Event()

    async def worker() -> None:
        await go.wait()
        await Author.aio_create(name="worker")
        wrote.set()

    async with TransactionTestCase(database):
        task = asyncio.create_task(worker())
        async with TransactionTestCase(database):
            go.set()
            await bounded(wrote.wait())
            assert await names() == ["worker"]
        assert await names() == []  # undone with the nested block, as the block's own rows are
        await bounded(task)
    assert await names() == []


async def test_tasks_started_inside_a_block_share_it(database: Any) -> None:
    async with TransactionTestCase(database):
        await bounded(asyncio.gather(*(asyncio.create_task(Author.aio_create(name=f"a{i}")) for i in range(5))))
        assert await names() == [f"a{i}" for i in range(5)]
    assert await names() == []


async def test_a_connection_held_by_a_task_refuses_statements_after_the_block(database: Any) -> None:
    go, done = asyncio.Event(), asyncio.get_running_loop().create_future()

    async def holder() -> None:
        async with database.aio_connection() as connection:
            await go.wait()
            try:
                async with connection.cursor() as cursor:
                    await cursor.execute("INSERT INTO author (name) VALUES ('held')")
            except BaseException as error:
                done.set_exception(error)
            else:
                done.set_result(None)

    async with TransactionTestCase(database):
        task = asyncio.create_task(holder())
        await asyncio.sleep(0)
    async with TransactionTestCase(database):
        go.set()
        with pytest.raises(TransactionError, match="outlived"):
            await bounded(done)
        assert await names() == []
    await bounded(task)
    assert await names() == []


# -- synchronous queries inside a block --------------------------------------------------------------------------------


async def test_a_synchronous_read_inside_a_block_fails_at_once(database: Any) -> None:
    async with TransactionTestCase(database):
        await Author.aio_create(name="async")
        with database.allow_sync(), pytest.raises(TransactionError, match="clear_tables") as raised:
            Author.select().count()
        assert 'isolation="clear"' in str(raised.value)
        with database.allow_sync(), pytest.raises(TransactionError, match="synchronous"):
            database.execute_sql("SELECT 1")
        assert await names() == ["async"]
    with database.allow_sync():  # after the block, the synchronous API is the database's own again
        assert Author.select().count() == 0


async def test_a_synchronous_write_from_another_thread_fails_instead_of_waiting(database: Any) -> None:
    def write() -> None:
        with database.allow_sync():
            Author.create(name="taken")  # the block holds this unique key: it would wait for ever

    async with TransactionTestCase(database):
        await Author.aio_create(name="taken")
        with pytest.raises(TransactionError, match="clear_tables"):
            await bounded(asyncio.get_running_loop().run_in_executor(None, write))
    assert await names() == []


async def test_a_synchronous_query_in_a_nested_block_and_a_sibling_task_fails_too(database: Any) -> None:
    async def read() -> int:
        with database.allow_sync():
            return int(Author.select().count())

    async with TransactionTestCase(database):
        async with TransactionTestCase(database):
            with pytest.raises(TransactionError, match="clear_tables"):
                await read()
        with pytest.raises(TransactionError, match="clear_tables"):
            await bounded(asyncio.create_task(read()))
    assert await read() == 0


@pytest.mark.parametrize("standing", [False, True], ids=["patched by each block", "stand-ins kept"])
async def test_sibling_blocks_each_keep_their_own_allow_transactions(database: Any, standing: bool) -> None:
    # The stand-ins route each task's aio_atomic() to its own block's rule, whichever block opened last, and whether
    # each block patches the database or finds the plugin's stand-ins kept on it for the session.
    from contextlib import nullcontext

    from peewee_async_testing.engine import standing_patches

    needs_two_writers(database)
    before, both_open = dict(vars(database)), Meeting(2)

    async def block(allowed: bool) -> str:
        async with TransactionTestCase(database, allow_transactions=allowed):
            await both_open.arrive()  # both blocks open: the later one patched last, if any did
            try:
                async with database.aio_atomic():
                    await Author.aio_create(name=f"allowed={allowed}")
            except ValueError:
                return "refused"
            return "savepoint"

    with standing_patches(database) if standing else nullcontext():
        assert await bounded(asyncio.gather(block(True), block(False))) == ["savepoint", "refused"]
        assert await bounded(asyncio.gather(block(False), block(True))) == ["refused", "savepoint"]
    assert await names() == []
    assert unpatched(database, before)
