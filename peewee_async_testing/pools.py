"""A pool for the running event loop: a peewee-async pool serves only the loop that opened it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from peewee_async.databases import AioDatabase
from peewee_async.pool import PoolBackend

from .connection import SharedConnection
from .drivers import IDLE, close, is_closed, read_reply, send_unread, terminate, transaction_status
from .patches import set_attribute

#: How long an exit waits for the pool to replace a broken connection (the server may be down or refuse it).
REPLACE_WAIT = 5.0


async def replace_broken(backend: PoolBackend, broken: Any, pid: int) -> Any:
    """Give the broken connection back and take its replacement from the pool (so a pool of one connection is
    enough), and through it end the broken one's server process ``pid``, if it still runs; return the replacement.
    """
    await backend.release(broken)
    connection = await asyncio.wait_for(backend.acquire(), REPLACE_WAIT)
    try:
        await terminate(connection, pid)
    except BaseException:
        await backend.release(connection)
        raise
    return connection


class LoopPool:
    """The pool of one event loop, and the connection its test transactions reuse, one test after another.

    Taking a connection from the pool and giving it back for every test costs more than the test's
    ``BEGIN`` and ``ROLLBACK``; after a rollback the connection is as good as new, so it stays out of
    the pool until the loop's end (or until it breaks, when the next test gets a fresh one), or until a test
    that takes connections from the pool itself asks for it (:meth:`give_back`).
    """

    def __init__(self, backend: PoolBackend) -> None:
        self.backend = backend
        self.loop = asyncio.get_running_loop()
        self._kept: Any = None
        self._unread: Any = None  # a ROLLBACK sent by roll_back(), its reply not read yet
        #: Whether a block runs on the kept connection now (from :meth:`kept_connection` to the end of its block).
        self.lent = False

    async def kept_connection(self) -> Any:
        await self._settle()
        if self._kept is not None and is_closed(self._kept):
            await self.give_back()
        if self._kept is None:  # (None while acquiring: a failed attempt keeps nothing given back already)
            self._kept = await self.backend.acquire()
        self.lent = True
        return self._kept

    @property
    def keeps(self) -> bool:
        """Whether it keeps a connection out of the pool now (:meth:`give_back` has something to do)."""
        return self._kept is not None or self._unread is not None

    async def give_back(self) -> None:
        """Put the kept connection back in the pool (if any), for code that takes connections from the pool itself
        (a ``clear_tables`` test, its clean-up): a pool of one connection has no other."""
        try:
            await self._settle()
        finally:
            connection, self._kept = self._kept, None
            if connection is not None:
                await self.backend.release(connection)

    async def replace_broken(self, pid: int) -> None:
        """The kept connection broke: keep its replacement instead (see :func:`replace_broken`)."""
        broken, self._kept, self._unread = self._kept, None, None
        self._kept = await replace_broken(self.backend, broken, pid)

    async def roll_back(self, shared: SharedConnection, *statements: str) -> None:
        """Send ``ROLLBACK`` (and the ``statements`` that follow it) on the kept connection (aiopg), and leave the
        reply to be read later.

        The server runs them as they arrive, before any later statement of this connection, so nothing of the test
        outlives them; only the reply is read later, by the next test's first use of the connection (or at the
        loop's end), so the test waits neither a round trip nor a turn of the event loop for it. A statement still
        running on the connection (the lock held) is waited for first, as any statement would be.
        """
        if shared.busy():
            await shared.control("ROLLBACK", *statements)
        else:
            self._unread = send_unread(self._kept, "; ".join(("ROLLBACK", *statements)))

    async def _settle(self) -> None:
        """Read the reply of a ``ROLLBACK`` sent by :meth:`roll_back`. A connection it failed on, or that it did not
        leave idle, is closed (the next test gets a fresh one)."""
        unread, self._unread = self._unread, None
        if unread is None or self._kept is None:
            return
        idle = False
        try:
            await read_reply(self._kept, unread)
            idle = not is_closed(self._kept) and transaction_status(self._kept) == IDLE
        except Exception:
            pass
        finally:  # (cancelled while waiting too: a reply left unread would fail the connection's next statement)
            if not idle:
                await close(self._kept)

    async def close(self) -> None:
        try:
            await self.give_back()
        finally:
            await self.backend.close()


#: The loops' pools open now (:func:`pool_on_running_loop`), for :func:`give_back_kept`.
_open_pools: list[LoopPool] = []


def give_back_kept() -> None:
    """From synchronous code: give the connection each open loop pool keeps back to its pool, where no block runs on
    it and its loop is idle. Code outside every block (a wider fixture's set-up) takes its connections from the pool
    itself, and a pool of one connection has no other."""
    for pool in list(_open_pools):
        if pool.keeps and not pool.lent and not pool.loop.is_running() and not pool.loop.is_closed():
            pool.loop.run_until_complete(pool.give_back())


@asynccontextmanager
async def pool_on_running_loop(database: AioDatabase) -> AsyncIterator[LoopPool]:
    """Give ``database`` a pool of its own for the block, then close it and put the previous one back.

    The pool connects lazily, on the loop of the first query. Nest these for nested loop scopes
    (a session loop, then a function loop): each level gets its own pool, closed before its loop ends.
    """
    pool = LoopPool(database.pool_backend_cls(database=database.database, **database.pool_params))
    undo = set_attribute(database, "pool_backend", pool.backend)
    _open_pools.append(pool)
    try:
        yield pool
    finally:
        _open_pools.remove(pool)
        try:
            await pool.close()
        finally:
            undo()
