"""An async test run inside its test transaction: what the ``in_transaction`` fixture sets up and ends.

Where it costs least: an async fixture around the test would cost each test more than its ``BEGIN`` and
``ROLLBACK``. So the patches go on as the fixture sets up, the transaction opens at the first query, and it is
rolled back at the end of the test's own coroutine (which stands in for the test function meanwhile). A query of a
later fixture tear-down opens a new transaction, which :meth:`IsolatedRun.end` rolls back on the test's loop.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest

from ._compat import add_note, replaced_test_function
from .engine import CaseEngine
from .exceptions import TransactionError
from .tasks import left_tasks_message, stop_left_tasks


class IsolatedRun:
    """The test ``item`` run inside ``engine``'s block: patched now, its function replaced until :meth:`end`."""

    def __init__(self, item: pytest.Function, engine: CaseEngine) -> None:
        self.item, self.engine = item, engine
        self._task: asyncio.Task[Any] | None = None  # the test's own, once it runs
        engine.patch()
        try:
            self._undo = replaced_test_function(item, self._function(item.obj))
        except BaseException:
            engine.unpatch()
            raise

    def _function(self, test: Any) -> Any:
        @functools.wraps(test)
        async def run_in_transaction(*args: Any, **kwargs: Any) -> Any:
            return await self._run(test, args, kwargs)

        return run_in_transaction

    async def _run(self, test: Any, args: Any, kwargs: Any) -> Any:
        self._task = asyncio.current_task()
        before = asyncio.all_tasks()  # the test's tasks are the ones it leaves running: stopped before the ROLLBACK
        try:
            result = await test(*args, **kwargs)
        except BaseException as error:
            left = await stop_left_tasks(before)
            if left:
                add_note(error, left_tasks_message(self.item.nodeid, left))
            await self.engine.finish(type(error), error, error.__traceback__)
            raise
        left = await stop_left_tasks(before)
        await self.engine.finish(None, None, None)
        if left:
            raise TransactionError(left_tasks_message(self.item.nodeid, left))
        return result

    def end(self) -> None:
        """The fixture's tear-down: roll back what later tear-downs opened, undo the patches, put the test back."""
        try:
            # Ctrl-C on a loop that pytest-asyncio runs with run_until_complete (Python 3.10) leaves the test's task
            # pending, its statement still running: cancel it, so that its connection is free to roll back.
            task = self._task
            if task is not None and not task.done():
                task.cancel()
                task.get_loop().run_until_complete(asyncio.wait([task]))
            self.engine.close_on_own_loop()
        finally:
            self._undo()
