"""A pool for the running event loop: a peewee-async pool serves only the loop that opened it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from peewee_async.databases import AioDatabase
from peewee_async.pool import PoolBackend


@asynccontextmanager
async def pool_on_running_loop(database: AioDatabase) -> AsyncIterator[PoolBackend]:
    """Give ``database`` a pool of its own for the block, then close it and put the previous one back.

    The pool connects lazily, on the loop of the first query. Nest these for nested loop scopes
    (a session loop, then a function loop): each level gets its own pool, closed before its loop ends.
    """
    previous = database.pool_backend
    backend = database.pool_backend_cls(database=database.database, **database.pool_params)
    database.pool_backend = backend
    try:
        yield backend
    finally:
        try:
            await backend.close()
        finally:
            database.pool_backend = previous
