"""TransactionTestCase: one dedicated connection, one transaction, rolled back at the end.

The steps, in order (each undone in reverse on exit, whatever happened in the block):

1. take one connection from the database's pool (connecting the pool first if needed);
2. patch ``database.aio_connection`` so that every query of the block runs on that connection,
   one statement at a time (several tasks may query at once);
3. make ``aio_atomic()``, ``aio_transaction()``, ``aio_begin()`` and ``aio_savepoint()`` raise ``ValueError``;
4. ``BEGIN``;
5. ``ROLLBACK``, restore every patch, and give the connection back (or close it when it is broken).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from peewee_async.databases import AioDatabase

from ._database import resolve_database
from .exceptions import TransactionError

P = ParamSpec("P")
R = TypeVar("R")

#: Databases that have a TransactionTestCase open right now.
_active: weakref.WeakSet[AioDatabase] = weakref.WeakSet()

#: The database's own transaction API, each refused inside the block.
_TRANSACTION_METHODS = ("aio_atomic", "aio_transaction", "aio_begin", "aio_savepoint", "_aio_atomic", "_aio_begin")

_MISSING = object()


class SharedConnection:
    """The block's dedicated connection as every query sees it: one statement (and its fetch) at a time.

    A driver connection runs one statement at once; aiopg even fails when two tasks send at the same time.
    The lock spans a cursor's whole life, from ``execute`` to the last ``fetch``. Anything else is read
    from the real connection.
    """

    def __init__(self, connection: Any) -> None:
        self.raw = connection
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def cursor(self, **kwargs: Any) -> AsyncIterator[Any]:
        async with self._lock, self.raw.cursor(**kwargs) as cursor:
            yield cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


class _Borrowed:
    """Stands in for ``database.aio_connection``: every ``async with`` yields the shared connection."""

    def __init__(self, connection: SharedConnection) -> None:
        self._connection = connection

    def __call__(self) -> _Borrowed:
        return self

    async def __aenter__(self) -> SharedConnection:
        return self._connection

    async def __aexit__(self, *exc_info: object) -> None:
        return None


def _refuse(name: str) -> Callable[..., Any]:
    public = name.lstrip("_")

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ValueError(
            f"{public}() is disabled inside TransactionTestCase: every query of the test runs in one transaction "
            "that is rolled back at the end, and a transaction of the code under test would commit or end it. "
            "Test code that opens transactions with the `clear_tables` fixture (or `aio_clear_tables`) instead."
        )

    return refuse


def _patch(stack: AsyncExitStack, obj: object, name: str, value: object) -> None:
    """Set ``obj.name`` on the instance and register the exact undo on ``stack``."""
    original = vars(obj).get(name, _MISSING)
    setattr(obj, name, value)

    def restore() -> None:
        if original is _MISSING:
            vars(obj).pop(name, None)
        else:
            setattr(obj, name, original)

    stack.callback(restore)


def _is_closed(connection: Any) -> bool:
    return bool(getattr(connection, "closed", False))


def _in_transaction(connection: Any) -> bool:
    if hasattr(connection, "in_transaction"):  # aiosqlite
        return bool(connection.in_transaction)
    if hasattr(connection, "raw"):  # aiopg: its psycopg2 connection knows
        return bool(connection.raw.get_transaction_status() != 0)  # 0 is IDLE
    return bool(connection.info.transaction_status != 0)  # psycopg 3


def _backend_pid(connection: Any) -> int | None:
    """The PostgreSQL server process of ``connection`` (known without a round trip), or ``None``."""
    if hasattr(connection, "raw"):  # aiopg
        return int(connection.raw.get_backend_pid())
    info = getattr(connection, "info", None)  # psycopg 3; SQLite has no server
    return None if info is None else int(info.backend_pid)


async def _close(connection: Any) -> None:
    result = connection.close()
    if inspect.isawaitable(result):
        await result


class TransactionTestCase:
    """Run a block of async code in one transaction on one connection, and roll it all back on exit.

    Every query of the block, from any task, runs on the same connection inside the same transaction,
    so the block sees its own writes and nothing it writes survives. Patches are undone and the
    connection goes back to the pool however the block ends (return, exception, cancellation, a dead
    connection). Transactions of the code under test (``aio_atomic()`` and friends) raise ``ValueError``.

    :param database: a peewee-async database (``PostgresqlDatabase``, ``Psycopg3Database``,
        ``SqliteDatabase``) or a :class:`peewee.DatabaseProxy` initialised with one.

    Example::

        async with TransactionTestCase(database) as case:
            await User.aio_create(name="ada")
            assert await User.select().aio_count() == 1
        assert await User.select().aio_count() == 0

    It also decorates async functions; each call gets a fresh transaction::

        @TransactionTestCase(database)
        async def test_signup():
            ...
    """

    def __init__(self, database: Any) -> None:
        self.database: AioDatabase = resolve_database(database, purpose="TransactionTestCase")
        #: The dedicated driver connection while the block runs, else ``None``.
        self.connection: Any = None
        self._shared: SharedConnection | None = None
        self._pid: int | None = None
        self._pool: Any = None
        self._stack: AsyncExitStack | None = None

    def __repr__(self) -> str:
        state = "active" if self._stack is not None else "inactive"
        return f"<TransactionTestCase {state} on {self.database.database!r}>"

    async def __aenter__(self) -> TransactionTestCase:
        database = self.database
        if self._stack is not None:
            raise TransactionError("This TransactionTestCase is already active; create one per block.")
        if database in _active:
            raise TransactionError(
                f"A TransactionTestCase is already active on database {database.database!r}; nesting them is "
                "not supported. Use one per test: the in_transaction fixture already wraps the whole test."
            )
        stack = AsyncExitStack()
        try:
            _active.add(database)
            stack.callback(_active.discard, database)
            if not database.is_connected:
                await database.aio_connect()
            self._pool = database.pool_backend
            self.connection = await self._pool.acquire()
            stack.push_async_callback(self._give_back)
            self._shared = SharedConnection(self.connection)
            _patch(stack, database, "aio_connection", _Borrowed(self._shared))
            for name in _TRANSACTION_METHODS:
                _patch(stack, database, name, _refuse(name))
            await self._execute("BEGIN")
            self._pid = _backend_pid(self.connection)
            stack.push_async_exit(self._roll_back)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is None:
            raise TransactionError("TransactionTestCase.__aexit__ called without a matching __aenter__.")
        await stack.__aexit__(exc_type, exc, traceback)

    def __call__(self, function: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        """Decorate an async function so that each call runs in a fresh TransactionTestCase."""
        if not inspect.iscoroutinefunction(function):
            raise TypeError(
                f"TransactionTestCase decorates async functions (async def), not {function!r}. "
                "Synchronous queries cannot see the test transaction: use the clear_tables fixture for them."
            )

        @functools.wraps(function)
        async def run_in_transaction(*args: P.args, **kwargs: P.kwargs) -> R:
            async with TransactionTestCase(self.database):
                return await function(*args, **kwargs)

        return run_in_transaction

    async def _execute(self, sql: str) -> None:
        assert self._shared is not None
        async with self._shared.cursor() as cursor:
            await cursor.execute(sql)

    async def _roll_back(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> bool:
        """Roll back; a failure never hides the block's own exception."""
        problem = ""
        try:
            if not _is_closed(self.connection):
                if not _in_transaction(self.connection):
                    problem = (
                        "the test transaction was ended inside the block (the code under test ran COMMIT or "
                        "ROLLBACK itself), so rows written before that may remain in the database"
                    )
                await self._execute("ROLLBACK")
        except Exception as error:
            # A connection that died took its transaction with it: the server keeps nothing of it.
            if not _is_closed(self.connection):
                problem = problem or f"ROLLBACK failed ({type(error).__name__}: {error}); rows may remain"
                await _close(self.connection)
        except BaseException:  # cancelled while rolling back: never hand an open transaction to the pool
            await _close(self.connection)
            raise
        if _is_closed(self.connection) and self._pid is not None:
            await self._end_session(self._pid)
        if not problem:
            return False
        message = f"TransactionTestCase could not undo the block: {problem}."
        if exc is None:
            raise TransactionError(message)
        if hasattr(exc, "add_note"):  # Python 3.11+
            exc.add_note(message)
        return False

    async def _end_session(self, pid: int) -> None:
        """End the server side of a dropped connection now, with its transaction and locks.

        A driver that drops a connection on a timeout (aiopg) leaves its server process running the
        query, holding the block's locks until it ends: the next test would wait for it. This waits
        (up to 5 s) until that process is gone; needs PostgreSQL 14 or later.
        """
        connection = await self._pool.acquire()
        try:
            async with connection.cursor() as cursor:
                await cursor.execute(
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE pid = %s AND state <> 'idle'",
                    (pid,),
                )
        finally:
            await self._pool.release(connection)

    async def _give_back(self) -> None:
        connection, self.connection, self._shared = self.connection, None, None
        await self._pool.release(connection)
