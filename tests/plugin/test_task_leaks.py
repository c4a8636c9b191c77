"""What a test leaves running fails that test and reaches no later one; a synchronous query in an isolated async
test fails at once; a server task started before the tests serves each test's transaction in turn."""

from __future__ import annotations

import pytest

from .project import CONFIGURED, make_ini

#: Generous: an inner run that hangs (the holes these tests guard against) fails instead of stopping the suite.
INNER_TIMEOUT = 180


def test_a_task_left_running_fails_its_test_and_never_writes_into_a_later_one(inner: pytest.Pytester) -> None:
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makepyfile(
        """
        import asyncio
        from app.db import database
        from app.models import Note

        TASKS = []

        async def keep_inserting():
            number = 0
            while True:
                number += 1
                await Note.aio_create(text=f"background {number}")

        async def test_leaves_a_task_running():
            TASKS.append(asyncio.create_task(keep_inserting()))
            while await Note.select().aio_count() < 3:
                await asyncio.sleep(0)

        async def test_the_next_test_sees_none_of_its_rows():
            for _ in range(50):  # the task's chances to write, were it still running
                await asyncio.sleep(0)
                assert await Note.select().aio_count() == 0
            assert TASKS[0].done()

        def test_a_synchronous_test_after_it_does_not_wait():  # its own connection (clear_tables)
            with database.allow_sync():
                database.execute_sql("SET lock_timeout = '10s'")  # fails, not hangs, if a transaction held the row
                Note.create(text="background 1")
        """
    )
    result = inner.runpytest_subprocess("-p", "no:randomly", timeout=INNER_TIMEOUT)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*TransactionError: peewee-async-testing: test_*.py::test_leaves_a_task_running left 1 task running "
            "when it ended: 'Task-*' (keep_inserting() at test_*.py:*). Cancelled now*",
            "FAILED *::test_leaves_a_task_running*",
        ]
    )


def test_a_task_mid_query_when_its_test_ends_does_not_hold_the_rollback_back(inner: pytest.Pytester) -> None:
    """On aiopg the plugin's ROLLBACK is sent by a task of its own: queued behind the left task's query, it would
    not go out before the loop runs again, and a synchronous test waits on the test transaction's locks."""
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makepyfile(
        """
        import asyncio
        from app.db import database
        from app.models import Note

        TASKS = []

        async def keep_querying(started):
            while True:
                started.set()
                await database.aio_execute_sql("SELECT pg_sleep(0.05)")

        async def test_leaves_a_task_mid_query():
            await Note.aio_create(text="held")
            started = asyncio.Event()
            TASKS.append(asyncio.create_task(keep_querying(started)))
            await started.wait()

        def test_a_synchronous_test_writes_the_same_key():  # its own connection (clear_tables)
            with database.allow_sync():
                database.execute_sql("SET lock_timeout = '10s'")  # fails, not hangs, if the transaction were open
                Note.create(text="held")
        """
    )
    result = inner.runpytest_subprocess("-p", "no:randomly", timeout=INNER_TIMEOUT)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["FAILED *::test_leaves_a_task_mid_query*"])


def test_a_task_left_by_a_failing_test_is_named_in_its_failure(inner: pytest.Pytester) -> None:
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makepyfile(
        """
        import asyncio
        from app.models import Note

        TASKS = []

        async def wait_for_ever():
            await asyncio.Event().wait()

        async def test_fails_and_leaves_a_task():
            TASKS.append(asyncio.create_task(wait_for_ever()))
            TASKS.append(asyncio.create_task(asyncio.wait_for(wait_for_ever(), 3600)))  # named by its own coroutine
            await Note.aio_create(text="x")
            raise RuntimeError("boom")

        async def test_after():
            assert await Note.select().aio_count() == 0
        """
    )
    result = inner.runpytest_subprocess("-p", "no:randomly", timeout=INNER_TIMEOUT)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*RuntimeError: boom",
            "*left 2 tasks running when it ended: 'Task-*' (wait_for_ever() at *), 'Task-*' (wait_*",
        ],
    )


def test_a_synchronous_query_in_an_isolated_async_test_fails_at_once(inner: pytest.Pytester) -> None:
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makepyfile(
        """
        from app.db import database
        from app.models import Note

        async def test_a_sync_write_of_a_key_the_test_holds():
            await Note.aio_create(text="taken")
            with database.allow_sync():
                Note.create(text="taken")  # would wait for ever on the test transaction's lock

        async def test_a_sync_read():
            await Note.aio_create(text="unseen")
            with database.allow_sync():
                assert Note.select().count() == 1  # would be 0: it cannot see the test transaction

        async def test_after():
            assert await Note.select().aio_count() == 0
        """
    )
    result = inner.runpytest_subprocess("-p", "no:randomly", timeout=INNER_TIMEOUT)
    result.assert_outcomes(passed=1, failed=2)
    assert result.stdout.str().count('`clear_tables` fixture, or @pytest.mark.peewee_db(isolation="clear")') >= 2
    result.stdout.fnmatch_lines(
        [
            "*TransactionError: A synchronous query (peewee's sync API*",
            "FAILED *::test_a_sync_write_of_a_key_the_test_holds*",
            "FAILED *::test_a_sync_read*",
        ]
    )


def test_a_server_task_started_before_the_tests_serves_each_test_in_turn(inner: pytest.Pytester) -> None:
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makepyfile(
        """
        import asyncio
        import pytest
        from app.models import Note

        @pytest.fixture(scope="session")
        async def server():
            requests = asyncio.Queue()

            async def serve():
                while True:
                    text, done = await requests.get()
                    try:
                        done.set_result(await Note.aio_create(text=text))
                    except Exception as error:
                        done.set_exception(error)

            task = asyncio.create_task(serve())
            yield requests
            task.cancel()

        async def served(server, text):
            done = asyncio.get_running_loop().create_future()
            await server.put((text, done))
            await done

        @pytest.mark.parametrize("run", range(3))
        async def test_the_server_writes_into_this_test(server, run):
            await served(server, "same")  # unique: fails if an earlier test's row survived
            assert [note.text for note in await Note.select().aio_execute()] == ["same"]
        """
    )
    inner.runpytest_subprocess(timeout=INNER_TIMEOUT).assert_outcomes(passed=3)


def test_a_server_task_that_knows_the_shared_transaction_writes_into_the_test(inner: pytest.Pytester) -> None:
    """The server fixture depends on the module's shared transaction, so its task knows that block: its writes
    must land in the test's block nested in it, even before the test's own first query."""
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makepyfile(
        """
        import asyncio
        import pytest
        from app.models import Note

        @pytest.fixture(scope="module")
        async def server(peewee_module_transaction):
            await Note.aio_create(text="shared")
            requests = asyncio.Queue()

            async def serve():
                while True:
                    text, done = await requests.get()
                    try:
                        done.set_result(await Note.aio_create(text=text))
                    except Exception as error:
                        done.set_exception(error)

            task = asyncio.create_task(serve())
            yield requests
            task.cancel()

        @pytest.mark.parametrize("run", range(2))
        async def test_the_server_writes_first(server, run):
            done = asyncio.get_running_loop().create_future()
            await server.put(("served", done))
            await done  # unique: fails if the first test's row survived
            assert sorted(note.text for note in await Note.select().aio_execute()) == ["served", "shared"]
        """
    )
    inner.runpytest_subprocess(timeout=INNER_TIMEOUT).assert_outcomes(passed=2)
