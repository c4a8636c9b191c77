"""What more than one test module needs: SQL as the server's superuser, the driver under test, its leak check."""

from __future__ import annotations

import asyncio
import gc
import sys
from typing import Any

import aiosqlite
import peewee_async
import psycopg2
import pytest

from peewee_async_testing import MariaDBServer, PostgresServer

from .models import Author

#: AioDatabaseTestCase runs its tests on an asyncio.Runner, new in Python 3.11 (tests/test_testcase.py checks
#: its error on 3.10).
needs_one_loop = pytest.mark.skipif(sys.version_info < (3, 11), reason="AioDatabaseTestCase needs Python 3.11+")


def run_on_own_loop(coroutine: Any) -> Any:
    """Run ``coroutine`` on a loop of its own, leaving the thread's current loop as it was: ``asyncio.run()``
    leaves none, and under pytest-asyncio 1.0 on Python 3.10 the session's loop is the thread's current one."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def admin(server: PostgresServer, sql: str, params: tuple[Any, ...] = (), database: str = "postgres") -> list[Any]:
    """Run one statement on ``database`` of the server, outside any transaction; return its rows."""
    connection = psycopg2.connect(**server.connect_params(database))
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


def mysql_admin(server: MariaDBServer, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Run one statement on the MariaDB ``server`` as its superuser (autocommit); return its rows."""
    connection = server.connect()
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params or None)
            return list(cursor.fetchall())
    finally:
        connection.close()


def databases(server: PostgresServer) -> set[str]:
    """The names of the server's databases."""
    return {name for (name,) in admin(server, "SELECT datname FROM pg_database")}


def is_sqlite(db: Any) -> bool:
    return isinstance(db, peewee_async.SqliteDatabase)


def is_mysql(db: Any) -> bool:
    return isinstance(db, peewee_async.MySQLDatabase)


def only_postgres(db: Any, why: str) -> None:
    """Skip the test unless ``db`` is PostgreSQL, saying ``why`` the others differ."""
    if is_sqlite(db) or is_mysql(db):
        pytest.skip(f"PostgreSQL only: {why}")


async def names() -> list[str]:
    """The names of the authors in the table, sorted."""
    return [author.name for author in await Author.select().order_by(Author.name).aio_execute()]


def open_sqlite_connections() -> int:
    """How many aiosqlite connections of this process are open.

    SQLite's "pool" in peewee-async opens a connection for each acquire and closes it on release, and
    counts nothing (its ``has_acquired_connections()`` is always false): an open connection is a held one.
    """
    return sum(isinstance(held, aiosqlite.Connection) and held._connection is not None for held in gc.get_objects())


async def acquired(db: Any) -> bool:
    """Whether a connection of the database is still held, counted where it is held.

    aiopg's and psycopg's pools count what they hand out; for SQLite, see :func:`open_sqlite_connections`.
    psycopg's pool replaces a discarded connection in a background task, and counts it as out until
    then: give it a moment (this waits only when the answer would be yes).
    """
    for _ in range(300):
        held = open_sqlite_connections() if is_sqlite(db) else db.pool_backend.has_acquired_connections()
        if not held:
            return False
        await asyncio.sleep(0.01)
    return True
