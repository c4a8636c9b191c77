"""What differs between the drivers' connections (aiopg, psycopg 3, aiomysql, aiosqlite), asked in one place.

Each function takes a raw driver connection, as a peewee-async pool hands it out. Adding a driver means
answering these questions for its connections.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from typing import Any

from .exceptions import TransactionError

#: libpq's transaction statuses "idle, outside a transaction" and "in a failed transaction" (psycopg2's and
#: psycopg 3's alike).
IDLE, IN_ERROR = 0, 3


def is_aiopg(connection: Any) -> bool:
    return hasattr(connection, "raw")  # aiopg wraps a psycopg2 connection


def is_aiomysql(connection: Any) -> bool:
    return type(connection).__module__.startswith("aiomysql")


def backend_pid(connection: Any) -> int | None:
    """The server process of ``connection`` (PostgreSQL's backend, MySQL's thread; known without a round trip),
    or None (SQLite)."""
    if is_aiomysql(connection):
        return int(connection.thread_id())
    if is_aiopg(connection):
        return int(connection.raw.get_backend_pid())
    info = getattr(connection, "info", None)  # psycopg 3
    return None if info is None else int(info.backend_pid)


def transaction_status(connection: Any) -> int | None:
    """libpq's transaction status of a PostgreSQL connection (read locally), or None (MySQL, SQLite)."""
    if is_aiomysql(connection):
        return None
    if is_aiopg(connection):
        return int(connection.raw.get_transaction_status())
    info = getattr(connection, "info", None)  # psycopg 3
    return None if info is None else int(info.transaction_status)


def backslash_quotes(connection: Any) -> bool:
    """Whether a backslash escapes in a plain string literal on this PostgreSQL connection (the server's
    ``standard_conforming_strings`` off; read locally, from what the server reported)."""
    name = "standard_conforming_strings"
    if is_aiopg(connection):
        status = connection.raw.get_parameter_status(name)
    else:
        info = getattr(connection, "info", None)  # psycopg 3
        status = None if info is None else info.parameter_status(name)
    return status in ("off", b"off")


def in_transaction(connection: Any) -> bool:
    """Whether ``connection`` is inside a transaction (read locally: from what the server last reported)."""
    if is_aiomysql(connection):
        return bool(connection.get_transaction_status())
    status = transaction_status(connection)
    return bool(connection.in_transaction) if status is None else status != 0  # 0 is IDLE


def is_closed(connection: Any) -> bool:
    return bool(getattr(connection, "closed", False))


async def close(connection: Any) -> None:
    result = connection.close()  # a coroutine for psycopg 3 and aiosqlite, a future or None for aiopg and aiomysql
    if inspect.isawaitable(result):
        await result


def no_active_transaction(connection: Any, message: str) -> Exception:
    """The error the PostgreSQL driver of ``connection`` raises for a statement that needs a transaction block
    sent outside one (SQLSTATE 25P01), as a :class:`TransactionError` too, saying ``message``."""
    if is_aiopg(connection):
        from psycopg2.errors import NoActiveSqlTransaction
    else:
        from psycopg.errors import NoActiveSqlTransaction
    return _also_ours(NoActiveSqlTransaction)(message)


@functools.cache
def _also_ours(driver_error: type[Exception]) -> type[Exception]:
    return type(driver_error.__name__, (TransactionError, driver_error), {"__module__": __name__})


async def fetch_all(connection: Any, sql: str) -> list[Any]:
    """Run ``sql`` (no parameters) on ``connection`` itself, past every lock and turn of the test's connection: for
    the machinery, where no statement of the code under test can run meanwhile. Returns its rows."""
    async with connection.cursor() as cursor:
        await cursor.execute(sql)
        return list(await cursor.fetchall()) if cursor.description else []


def can_defer(connection: Any) -> bool:
    """Whether a statement can travel in front of the next one, in one round trip, and a reply be read later:
    aiopg sends a whole query string as one simple query and answers with its last result (psycopg2 binds
    parameters on the client)."""
    return is_aiopg(connection)


def send_unread(connection: Any, sql: str) -> Any:
    """Send ``sql`` on an idle aiopg connection and return at once, the reply left unread: the server runs it as it
    arrives, before any later statement of the connection. Returns what :func:`read_reply` needs (psycopg2's
    cursor, which must live until then). No task, no loop iteration: psycopg2's own asynchronous ``execute()``.
    """
    cursor = connection.raw.cursor()
    cursor.execute(sql)
    return cursor


#: How long :func:`read_reply` waits for a reply that has not arrived yet, in seconds.
REPLY_WAIT = 30.0


async def read_reply(connection: Any, sent: Any) -> None:
    """Read the reply of what :func:`send_unread` sent, if the connection's own reader has not read it yet.

    By then it has nearly always arrived, and one ``poll()`` reads it; else the connection is looked at again every
    millisecond (its reader may read it meanwhile), up to :data:`REPLY_WAIT` seconds (then ``TimeoutError``). A
    failed statement raises its error here.
    """
    import psycopg2.extensions

    raw, deadline = connection.raw, asyncio.get_running_loop().time() + REPLY_WAIT
    while raw.isexecuting() and raw.poll() != psycopg2.extensions.POLL_OK:
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"no reply to a statement sent {REPLY_WAIT:g} s ago")
        await asyncio.sleep(0.001)
    del sent  # (kept alive until here: psycopg2 reads the reply into it)


async def terminate(connection: Any, pid: int) -> None:
    """End the server process ``pid`` now, with its transaction and locks, through ``connection`` (another one);
    wait (up to 5 s) until it is gone. Needs PostgreSQL 14 or later.

    A driver that drops a connection on a timeout or a cancellation (aiopg, aiomysql) leaves its server process
    running the query, holding its locks until it ends: the next test would wait for them.
    """
    if is_aiomysql(connection):
        await _kill(connection, pid)
        return
    async with connection.cursor() as cursor:
        await cursor.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE pid = %s AND state <> 'idle'",
            (pid,),
        )


#: How long :func:`terminate` waits for a killed MySQL thread to be gone, in seconds.
KILL_WAIT = 5.0


async def _kill(connection: Any, thread: int) -> None:
    """``KILL`` the MySQL thread ``thread`` (its query, its transaction) and wait until the server has ended it:
    a killed thread rolls back before it lets its locks go."""
    import pymysql

    deadline = asyncio.get_running_loop().time() + KILL_WAIT
    async with connection.cursor() as cursor:
        try:
            await cursor.execute(f"KILL {int(thread)}")
        except pymysql.err.MySQLError as error:  # 1094: unknown thread, it is gone already
            if error.args[0] != 1094:
                raise
            return
        while asyncio.get_running_loop().time() < deadline:
            await cursor.execute("SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = %s", (thread,))
            if not await cursor.fetchall():
                return
            await asyncio.sleep(0.005)
