"""Isolation beyond upstream, on every driver: app transactions on savepoints, surviving database errors,
sequences reset, and nested cases sharing data."""

from __future__ import annotations

import asyncio
from typing import Any

import peewee
import peewee_async
import psycopg2
import pytest

from peewee_async_testing import TransactionError, TransactionTestCase
from peewee_async_testing.drivers import backend_pid
from peewee_async_testing.pools import pool_on_running_loop

from .helpers import is_mysql, is_sqlite, names, only_postgres
from .models import Author, Book

OPTIONS = [
    {},
    {"allow_transactions": True},
    {"autosavepoint": True},
    {"reset_sequences": True},
    {"allow_transactions": True, "autosavepoint": True, "reset_sequences": True},
]


# -- allow_transactions --------------------------------------------------------------------------------------------


async def test_app_transactions_commit_into_the_test_transaction(database: Any) -> None:
    async with TransactionTestCase(database, allow_transactions=True):
        async with database.aio_transaction():
            await Author.aio_create(name="committed")
        async with database.aio_atomic():
            await Author.aio_create(name="atomic")
        assert await names() == ["atomic", "committed"]
    assert await names() == []


async def test_a_failing_app_transaction_rolls_back_only_itself(database: Any) -> None:
    async with TransactionTestCase(database, allow_transactions=True):
        await Author.aio_create(name="before")
        with pytest.raises(RuntimeError):
            async with database.aio_transaction():
                await Author.aio_create(name="inside")
                raise RuntimeError("the app's error")
        assert await names() == ["before"]
    assert await names() == []


async def test_nested_atomic_with_an_inner_failure_keeps_the_outer_rows(database: Any) -> None:
    async with TransactionTestCase(database, allow_transactions=True):
        async with database.aio_atomic():
            await Author.aio_create(name="outer")
            with pytest.raises(peewee.IntegrityError):
                async with database.aio_atomic():
                    await Author.aio_create(name="inner")
                    await Author.aio_create(name="outer")  # unique violation
            assert await names() == ["outer"]
            await Author.aio_create(name="after")  # the transaction is usable: no 'current transaction is aborted'
        assert await names() == ["after", "outer"]
    assert await names() == []


async def test_transaction_inside_transaction_keeps_peewee_async_rules(database: Any) -> None:
    async with TransactionTestCase(database, allow_transactions=True):
        async with database.aio_transaction():
            with pytest.raises(peewee.OperationalError, match="Transaction already opened"):
                async with database.aio_transaction():
                    pass
        async with database.aio_atomic():
            with pytest.raises(peewee.OperationalError, match="Transaction already opened"):
                async with database.aio_transaction():
                    pass


@pytest.mark.parametrize(("end", "kept"), [("commit", ["begun"]), ("rollback", [])])
async def test_begin_and_savepoint_objects(database: Any, end: str, kept: list[str]) -> None:
    async with TransactionTestCase(database, allow_transactions=True):
        for method in ("aio_begin", "aio_savepoint"):
            async with database.aio_connection():
                # aio_savepoint() needs a transaction open, as in production (PostgreSQL)
                outer = await database.aio_begin() if method == "aio_savepoint" else None
                transaction = await getattr(database, method)()
                assert transaction.is_savepoint
                await Author.aio_create(name="begun")
                await getattr(transaction, end)()
                if outer is not None:
                    await outer.commit()
            assert await names() == kept
            await Author.delete().aio_execute()
    assert await names() == []


async def test_get_or_create_creates_then_finds(database: Any) -> None:
    async with TransactionTestCase(database, allow_transactions=True):
        ada, created = await Author.aio_get_or_create(name="ada")
        assert created
        again, created = await Author.aio_get_or_create(name="ada")
        assert not created
        assert again.id == ada.id
    assert await names() == []


async def test_other_tasks_wait_for_an_app_transaction_and_its_children_join_it(database: Any) -> None:
    async with TransactionTestCase(database, allow_transactions=True):
        inside, release = asyncio.Event(), asyncio.Event()
        seen: list[int] = []

        async def app_code() -> None:
            async with database.aio_atomic():
                await Author.aio_create(name="in the block")
                await asyncio.gather(Author.aio_create(name="child 1"), Author.aio_create(name="child 2"))
                assert await Author.select().aio_count() == 3  # the children ran inside the block
                inside.set()
                await release.wait()
                raise RuntimeError("roll the block back")

        async def other_task() -> None:
            await inside.wait()
            seen.append(await Author.select().aio_count())  # waits for the block to end

        app, other = asyncio.create_task(app_code()), asyncio.create_task(other_task())
        await inside.wait()
        for _ in range(5):
            await asyncio.sleep(0)
        assert seen == []
        release.set()
        with pytest.raises(RuntimeError, match="roll the block back"):
            await app
        await other
        assert seen == [0], "another task's query ran inside the app transaction"
    assert await names() == []


# -- autosavepoint -------------------------------------------------------------------------------------------------


async def test_after_an_integrity_error_the_test_goes_on(database: Any) -> None:
    async with TransactionTestCase(database, autosavepoint=True):
        await Author.aio_create(name="ada")
        with pytest.raises(peewee.IntegrityError):
            await Author.aio_create(name="ada")
        await Author.aio_create(name="grace")
        assert await names() == ["ada", "grace"]
    assert await names() == []


async def test_without_autosavepoint_the_error_says_what_to_do(database: Any) -> None:
    async with TransactionTestCase(database):
        await Author.aio_create(name="ada")
        with pytest.raises(peewee.IntegrityError):
            await Author.aio_create(name="ada")
        if is_sqlite(database) or is_mysql(database):  # they do not abort a transaction on an error
            assert await names() == ["ada"]
        else:
            with pytest.raises(TransactionError, match=r"aborted the test transaction.*autosavepoint=True"):
                await names()
    assert await names() == []


async def test_autosavepoints_respect_app_savepoints(database: Any) -> None:
    async with TransactionTestCase(database, autosavepoint=True, allow_transactions=True):
        async with database.aio_atomic():
            await Author.aio_create(name="outer")
            with pytest.raises(RuntimeError):
                async with database.aio_atomic():
                    await Author.aio_create(name="inner")
                    with pytest.raises(peewee.IntegrityError):
                        await Author.aio_create(name="outer")
                    raise RuntimeError("give up")
            await Author.aio_create(name="after")
        assert await names() == ["after", "outer"]
    assert await names() == []


# -- reset_sequences -----------------------------------------------------------------------------------------------


async def first_id(database: Any, **options: bool) -> int:
    async with TransactionTestCase(database, **options):
        return int((await Author.aio_create(name="ada")).id)


async def test_reset_sequences_gives_the_same_ids_every_run(database: Any) -> None:
    ids = [await first_id(database, reset_sequences=True) for _ in range(3)]
    assert len(set(ids)) == 1


async def test_without_reset_sequences_postgres_ids_keep_growing(database: Any) -> None:
    ids = [await first_id(database) for _ in range(2)]
    assert ids[1] == (ids[0] if is_sqlite(database) else ids[0] + 1)  # the control for the test above


async def test_reset_ids_follow_the_rows_the_block_sees_not_what_ran_before(database: Any) -> None:
    await first_id(database)
    await first_id(database)  # moved the sequence (on PostgreSQL), rolled back
    assert await first_id(database, reset_sequences=True) == 1
    kept = await Author.aio_create(name="committed before")  # committed: a block sees it
    try:
        assert await first_id(database, reset_sequences=True) == kept.id + 1
        if is_mysql(database):
            return  # a nested block cannot reset on MySQL (tests/test_testcase.py)
        async with TransactionTestCase(database) as outer:  # shared data, as a class's transaction makes
            shared = [await Author.aio_create(name=f"shared {i}") for i in range(2)]
            await first_id(database)  # a nested block that does not reset moves the sequence
            assert outer.connection is not None
            assert await first_id(database, reset_sequences=True) == shared[-1].id + 1
    finally:
        await Author.delete().aio_execute()


async def test_a_block_that_does_not_reset_sees_what_it_would_have_seen(database: Any) -> None:
    expected = await first_id(database)
    await first_id(database, reset_sequences=True)
    assert await first_id(database) == (expected if is_sqlite(database) else expected + 1)


@pytest.mark.parametrize("last_to_end", ["first", "second"])
async def test_sibling_blocks_that_reset_leave_the_sequences_as_they_were(database: Any, last_to_end: str) -> None:
    """The second block opens after the first has moved the sequence: whichever ends last, what each would set
    back alone (where it found the sequence) is not where it was before both."""
    if is_sqlite(database):
        pytest.skip("SQLite has no sequences")
    sequence = "SELECT last_value, is_called FROM author_id_seq"
    if is_mysql(database):
        sequence = (
            "SELECT AUTO_INCREMENT FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'author'"
        )
        await database.aio_execute_sql("ALTER TABLE author AUTO_INCREMENT = 5")
    else:
        await database.aio_execute_sql("SELECT nextval('author_id_seq')")
    before = await database.aio_execute_sql(sequence, fetch_results=peewee_async.databases.fetchall)
    moved, ended = asyncio.Event(), {"first": asyncio.Event(), "second": asyncio.Event()}

    async def block(me: str, other: str) -> None:
        if me == "second":
            await moved.wait()
        async with TransactionTestCase(database, reset_sequences=True):
            await Author.aio_create(name=me)
            moved.set()
            if me == last_to_end:
                await ended[other].wait()
        ended[me].set()

    await asyncio.wait_for(asyncio.gather(block("first", "second"), block("second", "first")), 60)
    assert await database.aio_execute_sql(sequence, fetch_results=peewee_async.databases.fetchall) == before


async def test_reset_follows_the_start_and_increment_and_leaves_unowned_sequences(database: Any) -> None:
    """An identity column starting at 100 by 5 restarts at 100 (or past its largest value); a sequence no
    column owns is not moved at the start, and is set back at the end."""
    only_postgres(database, "identity columns and sequences")
    setup = (
        "CREATE TABLE counted (id integer GENERATED BY DEFAULT AS IDENTITY (START WITH 100 INCREMENT BY 5) "
        "PRIMARY KEY); CREATE SEQUENCE lonely START WITH 7"
    )
    await database.aio_execute_sql(setup)
    try:
        await database.aio_execute_sql("SELECT nextval('lonely'), nextval('lonely')")  # 7, 8
        await database.aio_execute_sql("INSERT INTO counted DEFAULT VALUES")  # committed: 100

        async def next_values() -> tuple[Any, ...]:
            one = peewee_async.databases.fetchone
            async with TransactionTestCase(database, reset_sequences=True):
                (lonely,) = await database.aio_execute_sql("SELECT nextval('lonely')", fetch_results=one)
                (largest,) = await database.aio_execute_sql("SELECT max(id) FROM counted", fetch_results=one)
                sql = "INSERT INTO counted DEFAULT VALUES RETURNING id"
                (new,) = await database.aio_execute_sql(sql, fetch_results=one)
                return lonely, largest, new

        assert await next_values() == (9, 100, 105)
        assert await next_values() == (9, 100, 105)
        await database.aio_execute_sql("DELETE FROM counted")
        assert await next_values() == (9, None, 100)
    finally:
        await database.aio_execute_sql("DROP TABLE counted; DROP SEQUENCE lonely")


async def test_sqlite_ids_repeat_with_autoincrement_too(database: Any) -> None:
    """SQLite's AUTOINCREMENT counter (sqlite_sequence) is a table: rolled back with the block, it keeps only the
    largest id ever committed, so ids repeat with or without reset_sequences (which does nothing there)."""
    if not is_sqlite(database):
        pytest.skip("SQLite's own counter")
    one = peewee_async.databases.fetchone
    await database.aio_execute_sql("CREATE TABLE counted (id INTEGER PRIMARY KEY AUTOINCREMENT, x INTEGER)")
    try:

        async def first() -> int:
            async with TransactionTestCase(database):
                await database.aio_execute_sql("INSERT INTO counted (x) VALUES (1)")
                (new,) = await database.aio_execute_sql("SELECT max(id) FROM counted", fetch_results=one)
                return int(new)

        assert [await first(), await first()] == [1, 1]
        await database.aio_execute_sql("INSERT INTO counted (x) VALUES (1)")  # committed, then deleted:
        await database.aio_execute_sql("DELETE FROM counted")
        assert [await first(), await first()] == [2, 2]  # the counter remembers it
    finally:
        await database.aio_execute_sql("DROP TABLE counted")


def lock_sequence(connection: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '20s'; ALTER SEQUENCE author_id_seq NO CYCLE")  # (rolled back)


async def wait_for_a_lock(connection: Any, pid: int) -> None:
    """Until the server has the backend ``pid`` waiting for a lock (polled: never a fixed sleep)."""
    for _ in range(3000):
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted", (pid,))
            if cursor.fetchone()[0]:
                return
        await asyncio.sleep(0.01)
    pytest.fail(f"backend {pid} never waited for a lock")


async def test_a_test_on_a_reused_connection_has_its_sequences_back_when_it_ends(database: Any) -> None:
    """The plugin's path (a connection kept for the next test, whose ROLLBACK reply is read later): setval() is
    not transactional and other connections see it at once, so it must be done before the block's end returns,
    or a row that the next test commits on another connection gets an id that the late setval() hands out again.

    The reset is held up by a lock, so that its timing does not matter.
    """
    only_postgres(database, "aiopg's ROLLBACK read later; MySQL's counters are set back before the block's end returns")
    other = psycopg2.connect(dbname=database.database, **database.connect_params)
    watcher = psycopg2.connect(dbname=database.database, **database.connect_params)
    watcher.autocommit = True
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT last_value FROM author_id_seq")
            (before,) = cursor.fetchone()
        async with pool_on_running_loop(database) as pool:
            case = TransactionTestCase(database, reset_sequences=True)
            engine = case.engine(loop_pool=pool)  # as the plugin's in_transaction drives it
            engine.patch()
            try:
                await Author.aio_create(name="moves the sequence")
                pid = backend_pid(case.connection.raw)
                # The reset must wait for a lock on the sequence: asked for now, granted when the test transaction
                # (which holds the sequence) ends, held until the rollback below.
                lock = asyncio.ensure_future(asyncio.to_thread(lock_sequence, other))
                await wait_for_a_lock(watcher, other.get_backend_pid())
                end = asyncio.ensure_future(engine.finish(None, None, None))
                assert pid is not None
                await wait_for_a_lock(watcher, pid)  # the setval(), queued behind the other's lock
                await asyncio.wait_for(lock, 60)
                for _ in range(10):
                    await asyncio.sleep(0)
                ended_early = end.done()
                other.rollback()  # the lock goes: setval() runs
                await asyncio.wait_for(end, 60)
            finally:
                engine.unpatch()
        assert not ended_early, "the block ended before its sequences were set back"
        with other.cursor() as cursor:
            cursor.execute("SELECT last_value FROM author_id_seq")
            assert cursor.fetchone()[0] == before
    finally:
        other.close()
        watcher.close()


# -- every option with concurrent queries --------------------------------------------------------------------------


@pytest.mark.parametrize("options", OPTIONS, ids=lambda options: "+".join(options) or "default")
async def test_fifty_gathered_queries_with_each_option(database: Any, options: dict[str, bool]) -> None:
    async with TransactionTestCase(database, **options):
        authors = await asyncio.gather(*(Author.aio_create(name=f"a{i}") for i in range(50)))
        counts = await asyncio.gather(*(Author.select().where(Author.id == a.id).aio_count() for a in authors))
        assert counts == [1] * 50
        if options.get("allow_transactions"):

            async def in_atomic(i: int) -> None:
                async with database.aio_atomic():
                    await Book.aio_create(title=f"t{i}", author=authors[i])

            await asyncio.gather(*(in_atomic(i) for i in range(50)))
            assert await Book.select().aio_count() == 50
    assert await names() == []


# -- nesting: shared test data -------------------------------------------------------------------------------------


async def test_blocks_open_at_once_in_sibling_tasks_each_keep_to_their_own(database: Any) -> None:
    """Two blocks in sibling tasks, the first ending while the second is open: each sees only its own rows
    (the database object is patched by both; each task's queries go to its own block's connection)."""
    if is_sqlite(database):
        pytest.skip("SQLite lets one connection write at a time: two open write transactions wait on each other")
    first_open, second_open, first_done = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def first() -> list[str]:
        async with TransactionTestCase(database):
            await Author.aio_create(name="first")
            first_open.set()
            await second_open.wait()
            return await names()

    async def second() -> list[str]:
        await first_open.wait()
        async with TransactionTestCase(database):
            await Author.aio_create(name="second")
            second_open.set()
            await first_done.wait()  # the first block ends while this one is open
            return await names()

    async def first_then_done() -> list[str]:
        try:
            return await first()
        finally:
            first_done.set()

    seen = await asyncio.gather(first_then_done(), second())
    assert list(seen) == [["first"], ["second"]]
    assert await names() == []  # (and the database fixture checks every attribute is back)


async def test_a_nested_case_sees_the_outer_data_and_undoes_its_own(database: Any) -> None:
    async with TransactionTestCase(database) as outer:
        await Author.aio_create(name="shared")
        for name in ("one", "two"):
            async with TransactionTestCase(database) as inner:
                assert inner.nested
                assert inner.connection is outer.connection
                assert await names() == ["shared"]
                await Author.aio_create(name=name)
                await Author.update(name="changed").where(Author.name == "shared").aio_execute()
        assert await names() == ["shared"]
        assert not outer.nested
    assert await names() == []
    assert "aio_connection" not in vars(database)


async def test_a_nested_case_applies_its_own_options(database: Any) -> None:
    async with TransactionTestCase(database):
        async with TransactionTestCase(database, allow_transactions=True), database.aio_atomic():
            await Author.aio_create(name="inner")
        with pytest.raises(ValueError, match="disabled inside TransactionTestCase"):
            async with database.aio_atomic():
                pass
        assert await names() == []


async def test_a_nested_case_on_another_loop_names_the_loop_scope(database: Any) -> None:
    async def enter_elsewhere() -> None:
        async with TransactionTestCase(database):
            pass  # pragma: no cover - never entered

    async with TransactionTestCase(database):
        await Author.aio_create(name="outer")
        with pytest.raises(TransactionError, match="asyncio_default_test_loop_scope = session"):
            await asyncio.to_thread(asyncio.run, enter_elsewhere())
        assert await names() == ["outer"]
    assert await names() == []
