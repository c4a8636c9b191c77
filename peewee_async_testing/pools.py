"""A pool for the running event loop: a peewee-async pool serves only the loop that opened it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from peewee_async.databases import AioDatabase
from peewee_async.pool import PoolBackend

from .connection import SharedConnection
from .drivers import close, is_closed
from .patches import set_attribute


class LoopPool:
    """The pool of one event loop, and the connection its test transactions reuse, one test after another.

    Taking a connection from the pool and giving it back for every test costs more than the test's
    ``BEGIN`` and ``ROLLBACK``; after a rollback the connection is as good as new, so it stays out of
    the pool until the loop's end (or until it breaks, when the next test gets a fresh one).
    """

    def __init__(self, backend: PoolBackend) -> None:
        self.backend = backend
        self.loop = asyncio.get_running_loop()
        self._kept: Any = None
        self._rolling_back: asyncio.Future[None] | None = None

    async def kept_connection(self) -> Any:
        await self._settle()
        connection = self._kept
        if connection is None or is_closed(connection):
            if connection is not None:
                await self.backend.release(connection)
            connection = self._kept = await self.backend.acquire()
        return connection

    async def roll_back(self, shared: SharedConnection) -> None:
        """Send ``ROLLBACK`` on the kept connection, and leave the reply to be read later.

        The server rolls back as the statement arrives, so nothing of the test outlives it; only the
        reply is read later, by the next test's first use of the connection (or at the loop's end),
        so the test does not wait a round trip for it.
        """
        self._rolling_back = asyncio.ensure_future(shared.control("ROLLBACK"))
        await asyncio.sleep(0)  # the task's first step sends it

    async def _settle(self) -> None:
        """Read the reply of a ``ROLLBACK`` sent by :meth:`roll_back`; a connection it failed on is closed."""
        rolling_back, self._rolling_back = self._rolling_back, None
        if rolling_back is None:
            return
        try:
            await rolling_back
        except Exception:  # the next test gets a fresh connection
            if self._kept is not None:
                await close(self._kept)

    async def close(self) -> None:
        try:
            await self._settle()
        finally:
            connection, self._kept = self._kept, None
            try:
                if connection is not None:
                    await self.backend.release(connection)
            finally:
                await self.backend.close()


@asynccontextmanager
async def pool_on_running_loop(database: AioDatabase) -> AsyncIterator[LoopPool]:
    """Give ``database`` a pool of its own for the block, then close it and put the previous one back.

    The pool connects lazily, on the loop of the first query. Nest these for nested loop scopes
    (a session loop, then a function loop): each level gets its own pool, closed before its loop ends.
    """
    pool = LoopPool(database.pool_backend_cls(database=database.database, **database.pool_params))
    undo = set_attribute(database, "pool_backend", pool.backend)
    try:
        yield pool
    finally:
        try:
            await pool.close()
        finally:
            undo()
