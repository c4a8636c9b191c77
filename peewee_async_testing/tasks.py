"""The tasks a test leaves running: found when it ends, cancelled, and named in the test's failure.

A task still running when its test ends would write into whatever the next test does (or wait on the test's
connection, so that its ``ROLLBACK`` queues behind it). :func:`stop_left_tasks` compares the loop's tasks with
those of the test's start: no query, only a copy of the loop's set of tasks. The drivers' tasks and asyncio's
own are not the test's (:data:`MACHINERY`).

Example::

    before = asyncio.all_tasks()
    await test()
    left = await stop_left_tasks(before)
    if left:
        raise TransactionError(left_tasks_message("test_x", left))
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Set
from typing import Any

#: Packages whose tasks are machinery, not the test's: the drivers' (psycopg's pool starts its workers at the first
#: query) and asyncio's own coroutines, which run no query (Python 3.11's wait_for() wraps a pool's wait in a task).
MACHINERY = frozenset({"aiopg", "aiosqlite", "asyncio", "psycopg", "psycopg_pool"})
#: How long the cancelled tasks get to end (they end at their next await, unless they swallow the cancellation).
GRACE = 5.0


def _own_coroutine(task: asyncio.Task[Any]) -> Any:
    """The first coroutine of ``task``'s await chain that is not :data:`MACHINERY`'s (None: all of it is), so
    that ``create_task(wait_for(insert(), 60))`` counts, as ``insert()``."""
    coroutine: Any = task.get_coro()
    while getattr(coroutine, "cr_frame", None) is not None:
        if str(coroutine.cr_frame.f_globals.get("__name__", "")).partition(".")[0] not in MACHINERY:
            return coroutine
        coroutine = coroutine.cr_await
    return None


def describe(task: asyncio.Task[Any], coroutine: Any) -> str:
    """``'Task-7' (keep_inserting() at test_app.py:12)``: its name, its own coroutine, and where that is."""
    frame = coroutine.cr_frame
    where = f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"
    return f"{task.get_name()!r} ({coroutine.__qualname__}() at {where})"


async def stop_left_tasks(before: Set[asyncio.Task[Any]]) -> list[str]:
    """Cancel the tasks of the running loop that were not in ``before`` and are still running (but
    :data:`MACHINERY`'s); wait for them, up to :data:`GRACE` seconds; return their descriptions, as they were."""
    current = asyncio.current_task()
    own = {task: _own_coroutine(task) for task in asyncio.all_tasks() - before if task is not current}  # pending ones
    left = [task for task, coroutine in own.items() if coroutine is not None]
    if not left:
        return []
    described = [describe(task, own[task]) for task in left]
    for task in left:
        task.cancel()
    await asyncio.wait(left, timeout=GRACE)
    for task in left:  # their outcome is the test's failure: asyncio must not report it again
        if task.done() and not task.cancelled():
            task.exception()
    return described


def left_tasks_message(test: str, described: list[str]) -> str:
    count = f"{len(described)} task{'s' if len(described) > 1 else ''}"
    return (
        f"peewee-async-testing: {test} left {count} running when it ended: {', '.join(described)}. "
        "Cancelled now: a task that outlives its test would write into the next one. Await or cancel the tasks "
        "a test starts before it ends (a fixture that starts one stops it in its tear-down)."
    )
