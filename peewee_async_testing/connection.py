"""The test's one connection as the code under test sees it: one statement at a time, from any task.

:class:`SharedConnection` stands in for every connection the code asks for inside a test transaction:
one statement (with its fetch) at a time, optionally each under its own savepoint. Statements of the
transaction machinery itself (``SAVEPOINT``, ``RELEASE``, ``ROLLBACK``) go through :meth:`control`.
:class:`AioConnectionStandIn` stands in for ``database.aio_connection()``, handing that connection out.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from .drivers import IN_ERROR, can_defer, is_closed, transaction_status
from .exceptions import TransactionError

_AUTO = "pwat_auto"

#: The app transactions the current context is inside, outermost first. Tasks started inside one inherit it,
#: and share it, as they share its connection in peewee-async.
_transaction_path: contextvars.ContextVar[tuple[object, ...]] = contextvars.ContextVar("transaction_path", default=())

ABORTED = (
    "An earlier statement of this test failed, and PostgreSQL aborted the test transaction: it refuses every "
    "statement until the transaction is rolled back. To go on after a database error, catch it around an "
    "`async with database.aio_atomic():` block with TransactionTestCase(allow_transactions=True), or use "
    "TransactionTestCase(autosavepoint=True) (marker: @pytest.mark.peewee_db(autosavepoint=True))."
)


def inside_app_transaction() -> bool:
    """Whether the current task is inside a transaction block of the code under test."""
    return bool(_transaction_path.get())


class SharedConnection:
    """The test's dedicated connection, handed to every query of the block.

    A driver connection runs one statement at a time (aiopg even fails when two tasks send at once),
    so a lock spans each cursor's life, from ``execute`` to the last ``fetch``. With ``autosavepoint``
    (PostgreSQL), every statement runs under a savepoint that is rolled back to when it fails, so a
    database error does not abort the test transaction. Anything else is read from the real connection.
    """

    def __init__(self, connection: Any, *, postgres: bool) -> None:
        self.raw = connection
        self.postgres = postgres
        self.autosavepoint = False
        #: The event loop the connection belongs to.
        self.loop = asyncio.get_running_loop()
        self._lock = asyncio.Lock()
        self._auto_pending = False  # an autosavepoint is set and not yet released
        self._owner: object | None = None  # the app transaction that has the connection to itself
        self._turn = asyncio.Condition()
        #: A statement (``BEGIN``) sent in front of the next one, saving a round trip. Only where the
        #: driver sends a whole query string as one simple query and answers with the last result:
        #: aiopg (psycopg2 binds parameters on the client).
        self.deferred: str | None = None
        self.can_defer = can_defer(connection)
        #: Why the connection takes no more statements of the code under test (its block ended), or None.
        self.ended: str | None = None

    def _prefix(self) -> str:
        deferred, self.deferred = self.deferred, None
        return f"{deferred}; " if deferred else ""

    async def _wait_turn(self) -> None:
        """Wait while an app transaction of another task owns the connection.

        With one connection for all, a statement of another task would land inside that transaction
        and share its fate; so it waits until the transaction ends, and then sees what it committed.
        """
        if self._owner is None or self._owner in _transaction_path.get():
            return
        async with self._turn:
            await self._turn.wait_for(lambda: self._owner is None or self._owner in _transaction_path.get())

    @asynccontextmanager
    async def transaction_block(self) -> AsyncIterator[None]:
        """Own the connection for an app transaction block (nested blocks of the owner pass through)."""
        await self._wait_turn()
        if self._owner is not None:  # nested in our own transaction
            yield
            return
        token = self._owner = object()
        path = _transaction_path.set((*_transaction_path.get(), token))
        try:
            yield
        finally:
            _transaction_path.reset(path)
            async with self._turn:
                self._owner = None
                self._turn.notify_all()

    @asynccontextmanager
    async def cursor(self, **kwargs: Any) -> AsyncIterator[Any]:
        """A cursor for one statement of the code under test."""
        await self._wait_turn()
        async with self._lock:
            if self.ended:
                raise TransactionError(self.ended)
            if self.postgres:
                if transaction_status(self.raw) == IN_ERROR:
                    raise TransactionError(ABORTED)
                if self.autosavepoint:
                    await self._run(
                        f"RELEASE SAVEPOINT {_AUTO}; SAVEPOINT {_AUTO}" if self._auto_pending else f"SAVEPOINT {_AUTO}"
                    )
                    self._auto_pending = True
            try:
                async with self.raw.cursor(**kwargs) as cursor:
                    prefix = self._prefix()
                    yield _Prefixed(cursor, prefix) if prefix else cursor
            finally:
                if self._auto_pending and not is_closed(self.raw) and transaction_status(self.raw) == IN_ERROR:
                    await self._run(f"ROLLBACK TO SAVEPOINT {_AUTO}")

    async def control(self, *statements: str) -> None:
        """Run transaction statements in one round trip (PostgreSQL), releasing a pending autosavepoint first.

        The autosavepoint must go before anything changes the savepoint stack: releasing it later would
        release every savepoint set after it.
        """
        async with self._lock:
            if self._auto_pending:
                statements = (f"RELEASE SAVEPOINT {_AUTO}", *statements)
                self._auto_pending = False
            if self.postgres:
                await self._run("; ".join(statements))
            else:
                for statement in statements:
                    await self._run(statement)

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a query of the machinery itself (no autosavepoint) and return its rows."""
        await self._wait_turn()
        async with self._lock, self.raw.cursor() as cursor:
            if self.ended:
                raise TransactionError(self.ended)
            await cursor.execute(self._prefix() + sql, params)
            return list(await cursor.fetchall())

    async def _run(self, sql: str) -> None:
        async with self.raw.cursor() as cursor:
            await cursor.execute(self._prefix() + sql)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


class _Prefixed:
    """A cursor whose first ``execute`` sends a deferred statement in front, in the same round trip."""

    def __init__(self, cursor: Any, prefix: str) -> None:
        self._cursor, self._prefix = cursor, prefix

    async def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        prefix, self._prefix = self._prefix, ""
        return await self._cursor.execute(prefix + sql, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class AioConnectionStandIn:
    """Stands in for ``database.aio_connection``: every ``async with`` yields the shared connection.

    :param connection: returns the shared connection, opening it on first use.
    """

    def __init__(self, connection: Callable[[], Awaitable[SharedConnection]]) -> None:
        self._connection = connection

    def __call__(self) -> AioConnectionStandIn:
        return self

    async def __aenter__(self) -> SharedConnection:
        return await self._connection()

    async def __aexit__(self, *exc_info: object) -> None:
        return None
