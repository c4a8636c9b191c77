"""The test's one connection as the code under test sees it: one statement at a time, from any task.

:class:`SharedConnection` stands in for every connection the code asks for inside a test transaction (and is
``case.connection``): one statement (with its fetch) at a time, optionally each under its own savepoint, each
checked for transaction control (:mod:`~peewee_async_testing.statements`): ``BEGIN``, ``COMMIT``... sent as SQL
run on savepoints with ``allow_transactions``, and are refused without it. Statements of the transaction
machinery itself (``SAVEPOINT``, ``RELEASE``, ``ROLLBACK``) go through :meth:`~SharedConnection.control`.
:class:`AioConnectionStandIn` stands in for ``database.aio_connection()``, handing that connection out.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from peewee_async.connection import ConnectionContext, connection_context

from . import recording
from .drivers import IDLE, IN_ERROR, backslash_quotes, can_defer, in_transaction, is_closed, transaction_status
from .exceptions import AbortedTransactionError, TransactionControlError, TransactionError, TurnTimeoutError
from .statements import AUTOCOMMIT, BEGIN, COMMIT, PREPARED, SAVEPOINT, control_statements

_AUTO = "pwat_auto"
_NO_BACKSLASH_ESCAPES = 512  # MySQL's SERVER_STATUS_NO_BACKSLASH_ESCAPES: the sql_mode of that name is on
_SQL = "pwat_sql"  # the savepoint that stands for a transaction the code under test opened with SQL

#: How long, in seconds, a statement waits for another task's transaction block (``aio_atomic()``...) on the
#: test's one connection before it fails with :class:`~peewee_async_testing.exceptions.TurnTimeoutError`. In
#: production the statement would run on another connection at once; here it must wait, and if the block's
#: task is waiting for this one, both would wait for ever. Generous, so that a slow machine never makes a block
#: that is merely long look like that.
TURN_TIMEOUT = 30.0

#: The app transactions the current context is inside, outermost first. Tasks started inside one inherit it,
#: and share it, as they share its connection in peewee-async.
_transaction_path: contextvars.ContextVar[tuple[object, ...]] = contextvars.ContextVar("transaction_path", default=())

#: How to let the code under test open transactions: said by every refusal.
ALLOW = (
    "Let it run on savepoints instead with TransactionTestCase(allow_transactions=True) (pytest: "
    "@pytest.mark.peewee_db(allow_transactions=True), or `peewee_async_allow_transactions = true` in the ini "
    "file), or use the `clear_tables` fixture."
)
ABORTED = (
    "An earlier statement of this test failed, and PostgreSQL aborted the test transaction: it refuses every "
    "statement until the transaction is rolled back. To go on after a database error, catch it around an "
    "`async with database.aio_atomic():` block with TransactionTestCase(allow_transactions=True), or use "
    "TransactionTestCase(autosavepoint=True) (marker: @pytest.mark.peewee_db(autosavepoint=True))."
)
ABORTED_IN_BLOCK = (
    "An earlier statement inside this transaction block failed, and PostgreSQL aborted the transaction: it "
    "refuses every statement until the block is rolled back (as in production, where this is peewee.InternalError)."
)
REFUSED = (
    "The code under test sent {what} as SQL ({sql!r}) inside TransactionTestCase: every query of the test runs "
    "in one transaction that is rolled back at the end, and this would end it or change it. " + ALLOW
)
TWO_PHASE = (
    "The code under test sent a two-phase commit statement ({sql!r}) inside TransactionTestCase: PREPARE "
    "TRANSACTION ends the test transaction, and no savepoint can stand for it. Use the `clear_tables` fixture."
)
AUTOCOMMIT_REFUSED = (
    "The code under test sent {sql!r} inside TransactionTestCase: on MySQL it commits the test transaction "
    "(SET autocommit = 1, LOCK TABLES and UNLOCK TABLES commit implicitly; SET autocommit = 0 changes what commits). "
    "Open transactions with `database.aio_atomic()` or START TRANSACTION instead (they run on savepoints with "
    "allow_transactions=True), or use the `clear_tables` fixture."
)
SCRIPT = (
    "executescript() commits the open transaction before it runs (sqlite3), which would end the test "
    "transaction: run the statements one by one with execute(), or use the `clear_tables` fixture."
)
HOLDING = (
    "A statement was sent while this task holds a cursor of the test connection open (inside `async with "
    "connection.cursor()`): the connection runs one statement at a time, so it would wait for itself for ever. "
    "Finish with the cursor first."
)
WAITED = (
    "A statement of task {me!r} waited {timeout:g} s (connection.TURN_TIMEOUT) for task {owner!r} to leave its "
    "transaction block (aio_atomic(), aio_transaction()), and gave up. The test has one connection, so while a "
    "task is inside a transaction block, other tasks' statements wait for it to end (in production they would "
    "run on another connection); if that task awaits this one, both wait for ever. Start this task inside the "
    "block (it then takes part in it), or await it after the block."
)
_WHAT = {BEGIN: "BEGIN", COMMIT: "COMMIT", SAVEPOINT: "a savepoint statement"}


def inside_app_transaction() -> bool:
    """Whether the current task is inside a transaction block of the code under test."""
    return bool(_transaction_path.get())


class SharedConnection:
    """The test's dedicated connection, handed to every query of the block, and ``case.connection``.

    A driver connection runs one statement at a time (aiopg even fails when two tasks send at once),
    so a lock spans each cursor's life, from ``execute`` to the last ``fetch``. With ``autosavepoint``
    (PostgreSQL), every statement runs under a savepoint that is rolled back to when it fails, so a
    database error does not abort the test transaction. Transaction control sent as SQL is mapped onto a
    savepoint (``allow_transactions``) or refused. Anything else is read from the real connection,
    :attr:`raw` (whose own cursors bypass all of this).
    """

    def __init__(self, connection: Any, *, postgres: bool, mysql: bool = False, database: Any = None) -> None:
        self.raw = connection
        self.postgres = postgres
        self.mysql = mysql
        #: Whether the server takes several statements in one string, one round trip (PostgreSQL, and MySQL through
        #: aiomysql); SQLite's driver runs one per call.
        self.one_string = postgres or mysql
        #: The database whose block it serves: its captures (:func:`~peewee_async_testing.capture_queries`)
        #: record the statements of the code under test.
        self.database = database
        self.autosavepoint = False
        #: Whether ``BEGIN``, ``COMMIT``... sent as SQL run on a savepoint (else they are refused).
        self.allow_transactions = False
        #: Whether the code under test opened a transaction with SQL (``BEGIN``): the savepoint ``pwat_sql``.
        self.sql_transaction = False
        #: How many ``aio_begin()`` transactions of the code under test are open (each on a savepoint).
        self.begun = 0
        #: The event loop the connection belongs to.
        self.loop = asyncio.get_running_loop()
        self._lock = asyncio.Lock()
        self._holder: asyncio.Task[Any] | None = None  # the task holding the lock
        self._auto_pending = False  # an autosavepoint is set and not yet released
        self._owner: object | None = None  # the app transaction that has the connection to itself
        self._owner_task: asyncio.Task[Any] | None = None
        self._turn = asyncio.Condition()
        #: A statement (``BEGIN``) sent in front of the next one, saving a round trip. Only where the
        #: driver sends a whole query string as one simple query and answers with the last result:
        #: aiopg (psycopg2 binds parameters on the client). It stays until a statement carries it to the
        #: server: one that fails before it gets there (a parameter the driver cannot send, a syntax
        #: error) leaves it for the next.
        self.deferred: str | None = None
        self.can_defer = can_defer(connection)
        #: Why the connection takes no more statements of the code under test (its block ended), or None.
        self.ended: str | None = None
        #: What ended the test transaction inside the block on MySQL (a statement that commits implicitly, or a
        #: deadlock), or None: noted at the first statement after which the server was outside a transaction.
        self.ended_by: str | None = None
        #: How many warnings the first statement of the last :meth:`control` raised (MySQL): a ``ROLLBACK`` warns
        #: when it could not undo a non-transactional table.
        self.warnings = 0

    async def _wait_turn(self) -> None:
        """Wait while an app transaction of another task owns the connection, at most :data:`TURN_TIMEOUT`.

        With one connection for all, a statement of another task would land inside that transaction
        and share its fate; so it waits until the transaction ends, and then sees what it committed.
        """
        if self._owner is None or self._owner in _transaction_path.get():
            return
        async with self._turn:
            try:
                await asyncio.wait_for(
                    self._turn.wait_for(lambda: self._owner is None or self._owner in _transaction_path.get()),
                    TURN_TIMEOUT,
                )
            except asyncio.TimeoutError:
                me, owner = asyncio.current_task(), self._owner_task
                names = [task.get_name() if task else "?" for task in (me, owner)]
                raise TurnTimeoutError(WAITED.format(me=names[0], owner=names[1], timeout=TURN_TIMEOUT)) from None

    @asynccontextmanager
    async def transaction_block(self) -> AsyncIterator[None]:
        """Own the connection for an app transaction block (nested blocks of the owner pass through)."""
        await self._wait_turn()
        if self._owner is not None:  # nested in our own transaction
            yield
            return
        token = self._owner = object()
        self._owner_task = asyncio.current_task()
        path = _transaction_path.set((*_transaction_path.get(), token))
        try:
            yield
        finally:
            _transaction_path.reset(path)
            async with self._turn:
                self._owner, self._owner_task = None, None
                self._turn.notify_all()

    async def _hold(self) -> None:
        """Wait for this task's turn and take the lock: its statements alone run, until :meth:`_let_go`."""
        if self._owner is not None:
            await self._wait_turn()
        task = asyncio.current_task()
        if self._holder is not None and self._holder is task:
            raise TransactionError(HOLDING)
        await self._lock.acquire()
        if self.ended:
            self._lock.release()
            raise TransactionError(self.ended)
        self._holder = task

    def busy(self) -> bool:
        """Whether a statement holds the connection (its lock) now."""
        return self._lock.locked()

    def _let_go(self) -> None:
        self._holder = None
        self._lock.release()

    def cursor(self, **kwargs: Any) -> _HeldCursor:
        """A cursor for the statements of the code under test (``async with``), the lock held for its life."""
        return _HeldCursor(self, kwargs)

    def _text(self, sql: Any) -> str | None:
        return recording.sql_text(sql, self.raw)

    def _scan(self, text: str) -> list[tuple[int, int, str | None]] | None:
        if self.mysql:
            backslashes = "\\" in text and not self.raw.server_status & _NO_BACKSLASH_ESCAPES
            return control_statements(text, postgres=False, backslashes=backslashes, mysql=True)
        backslashes = self.postgres and "\\" in text and backslash_quotes(self.raw)
        return control_statements(text, postgres=self.postgres, backslashes=backslashes)

    async def statement(self, cursor: Any, method: str, sql: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one statement of the code under test through ``cursor.method`` (the lock held)."""
        text = self._text(sql)
        found = None if text is None else self._scan(text)
        if text is not None and found is not None:
            return await self._code_control(cursor, method, text, found, args, kwargs)
        if self.aborted():
            raise AbortedTransactionError(ABORTED_IN_BLOCK if inside_app_transaction() else ABORTED)
        if self.autosavepoint and self.postgres:
            await self._run(
                f"RELEASE SAVEPOINT {_AUTO}; SAVEPOINT {_AUTO}" if self._auto_pending else f"SAVEPOINT {_AUTO}"
            )
            self._auto_pending = True
        try:
            if method != "execute":  # the deferred statement travels only in front of execute()'s SQL
                await self._flush()
                result = await getattr(cursor, method)(sql, *args, **kwargs)
            else:
                result = await self._send(cursor, sql, *args, **kwargs)
        except BaseException as error:
            if self._auto_pending:
                await self._undo_failed_auto()
            if self.mysql and isinstance(error, Exception) and not is_closed(self.raw):
                with contextlib.suppress(Exception):  # an error reply has no transaction status: ask for it
                    await self._run("DO 0")
            self._note_end(text, error)
            raise
        self._note_end(text, None)
        return result

    def _note_end(self, text: str | None, error: BaseException | None) -> None:
        """On MySQL, note the statement after which the server is outside the test transaction: it committed
        implicitly (DDL, TRUNCATE, LOCK TABLES...) or the server rolled the transaction back (a deadlock, a lock
        wait timeout with innodb_rollback_on_timeout). The connection runs with autocommit off, so the later
        statements run in a new transaction, which the block's ROLLBACK undoes; the block then fails, naming it."""
        if not self.mysql or self.ended_by is not None or is_closed(self.raw) or in_transaction(self.raw):
            return
        shown = " ".join((text or "?").split())
        shown = shown if len(shown) <= 200 else shown[:197] + "..."
        self.ended_by = repr(shown) + ("" if error is None else f" ({type(error).__name__}: {error})")

    async def _undo_failed_auto(self) -> None:
        """Roll back to the pending autosavepoint if the statement under it failed (the transaction aborted)."""
        if not is_closed(self.raw) and transaction_status(self.raw) == IN_ERROR:
            await self._run(f"ROLLBACK TO SAVEPOINT {_AUTO}")

    async def _code_control(
        self, cursor: Any, method: str, sql: str, found: list[tuple[int, int, str | None]], args: Any, kwargs: Any
    ) -> Any:
        """Run SQL of the code under test that controls transactions: each such statement on a savepoint, or
        refused before anything is sent."""
        for start, end, kind in found:
            shown = " ".join(sql[start:end].split())
            if kind == PREPARED:
                raise TransactionControlError(TWO_PHASE.format(sql=shown))
            if kind == AUTOCOMMIT:
                raise TransactionControlError(AUTOCOMMIT_REFUSED.format(sql=shown))
            if kind is not None and not self.allow_transactions:
                raise TransactionControlError(REFUSED.format(what=_WHAT.get(kind, "ROLLBACK"), sql=shown))
        if self._auto_pending:  # the savepoint stack changes: the autosavepoint must go first
            await self._run(f"RELEASE SAVEPOINT {_AUTO}")
            self._auto_pending = False
        statements: list[str] = []
        for start, end, kind in found:
            statements += [sql[start:end]] if kind is None else self._savepoints_for(kind, sql[start:end])
        # PostgreSQL takes them in one string, one round trip; SQLite's driver runs one statement per call.
        result = None  # none at all: a BEGIN inside one, or a COMMIT outside any, does nothing, as the server does
        for statement in ["; ".join(statements)] if self.one_string and statements else statements:
            if method != "execute":
                await self._flush()
                result = await getattr(cursor, method)(statement, *args, **kwargs)
            else:
                result = await self._send(cursor, statement, *args, **kwargs)
        return result

    def _savepoints_for(self, kind: str, statement: str) -> list[str]:
        """What stands for a transaction statement of the code under test (one level, as in the server)."""
        if kind == SAVEPOINT:
            return [statement]
        opened, self.sql_transaction = self.sql_transaction, kind == BEGIN
        if kind == BEGIN:
            return [] if opened else [f"SAVEPOINT {_SQL}"]
        if not opened:
            return []
        release = f"RELEASE SAVEPOINT {_SQL}"
        if kind == COMMIT and not self.aborted():
            return [release]
        return [f"ROLLBACK TO SAVEPOINT {_SQL}", release]  # COMMIT of an aborted transaction rolls it back

    def aborted(self) -> bool:
        """Whether PostgreSQL aborted the transaction after an error (read locally)."""
        return self.postgres and transaction_status(self.raw) == IN_ERROR

    async def _send(self, cursor: Any, sql: str, *args: Any, **kwargs: Any) -> Any:
        """``cursor.execute(sql)`` with the deferred statement in front; given back if it did not run."""
        deferred, self.deferred = self.deferred, None
        if deferred is None:
            return await cursor.execute(sql, *args, **kwargs)
        try:
            return await cursor.execute(f"{deferred}; {sql}", *args, **kwargs)
        except BaseException:
            if not is_closed(self.raw) and transaction_status(self.raw) == IDLE:
                self.deferred = deferred  # it never ran: refused by the driver, or by the server's parser
            raise

    async def _flush(self) -> None:
        """Send the deferred statement alone (before a statement it cannot travel with)."""
        if self.deferred is not None:
            async with self.raw.cursor() as cursor:
                await self._send(cursor, "SELECT 1")

    async def control(self, *statements: str) -> None:
        """Run transaction statements in one round trip (PostgreSQL), releasing a pending autosavepoint first.

        The autosavepoint must go before anything changes the savepoint stack: releasing it later would
        release every savepoint set after it.
        """
        if self._holder is not None and self._holder is asyncio.current_task():
            raise TransactionError(HOLDING)
        async with self._lock:
            if self._auto_pending:
                statements = (f"RELEASE SAVEPOINT {_AUTO}", *statements)
                self._auto_pending = False
            if self.one_string:
                await self._run("; ".join(statements))
            else:
                for statement in statements:
                    await self._run(statement)

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a query of the machinery itself (no autosavepoint) and return its rows."""
        await self._hold()
        try:
            async with self.raw.cursor() as cursor:
                await self._send(cursor, sql, params or None)  # (no parameters: a % is a %)
                return list(await cursor.fetchall())
        finally:
            self._let_go()

    async def _run(self, sql: str) -> None:
        async with self.raw.cursor() as cursor:
            await self._send(cursor, sql)
            if self.mysql:  # (the first statement's result, before the cursor reads the others)
                self.warnings = cursor._result.warning_count if cursor._result is not None else 0

    async def commit(self) -> None:
        """The driver's ``commit()`` (psycopg 3, aiosqlite) as the SQL ``COMMIT``: on a savepoint, or refused."""
        async with self.cursor() as cursor:
            await cursor.execute("COMMIT")

    async def rollback(self) -> None:
        """The driver's ``rollback()`` as the SQL ``ROLLBACK``: on a savepoint, or refused."""
        async with self.cursor() as cursor:
            await cursor.execute("ROLLBACK")

    async def begin(self) -> None:
        """aiomysql's ``begin()`` as the SQL ``BEGIN``: on a savepoint, or refused (MySQL's BEGIN commits first)."""
        async with self.cursor() as cursor:
            await cursor.execute("BEGIN")

    async def autocommit(self, value: Any) -> None:
        """aiomysql's ``autocommit()``: refused, as the SQL ``SET autocommit`` is."""
        async with self.cursor() as cursor:
            await cursor.execute(f"SET autocommit = {int(bool(value))}")

    def execute(self, sql: Any, *args: Any, **kwargs: Any) -> Any:
        """The driver's own ``execute()`` (psycopg 3, aiosqlite), with transaction control refused: it bypasses
        the turns and savepoints of a cursor, so send such statements through one."""
        self._refuse_control(sql, "execute")
        return self.watched(sql, args, kwargs, self.raw.execute(sql, *args, **kwargs))

    def executemany(self, sql: Any, *args: Any, **kwargs: Any) -> Any:
        """The driver's own ``executemany()`` (aiosqlite), with transaction control refused."""
        self._refuse_control(sql, "executemany")
        return self.watched(sql, args, kwargs, self.raw.executemany(sql, *args, **kwargs))

    def executescript(self, *args: Any, **kwargs: Any) -> Any:
        """aiosqlite's ``executescript()``: refused, as it commits first."""
        raise TransactionControlError(SCRIPT)

    def watched(self, sql: Any, args: tuple[Any, ...], kwargs: dict[str, Any], sent: Any) -> Any:
        """``sent`` (the statement ``sql`` of the code under test on its way, with ``args`` and ``kwargs``),
        recorded by the captures open in the context, if any."""
        if not recording.capturing():
            return sent
        params = recording.params_of(args, kwargs)
        return recording.watched(self.database, sql, params, sent, connection=self.raw, postgres=self.postgres)

    def _refuse_control(self, sql: Any, method: str) -> None:
        if self.ended:
            raise TransactionError(self.ended)
        text = self._text(sql)
        if text is not None and self._scan(text) is not None:
            raise TransactionControlError(
                f"{' '.join(text.split())!r} was sent through the driver's connection.{method}() inside "
                "TransactionTestCase, where it would end the test transaction: send it through a cursor "
                "(`async with connection.cursor() as cursor`) or database.aio_execute_sql(). " + ALLOW
            )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


class _HeldCursor:
    """One ``async with shared.cursor()``: the turn and the lock, the driver's cursor inside them, and on the way out
    the rollback to a failed statement's autosavepoint. (A class, not a generator: it runs for every statement.)"""

    __slots__ = ("_cursor", "_kwargs", "_shared")

    def __init__(self, shared: SharedConnection, kwargs: dict[str, Any]) -> None:
        self._shared, self._kwargs = shared, kwargs
        self._cursor: Any = None  # the driver's cursor context

    async def __aenter__(self) -> _Cursor:
        shared = self._shared
        await shared._hold()
        try:
            self._cursor = shared.raw.cursor(**self._kwargs)
            return _Cursor(shared, await self._cursor.__aenter__())
        except BaseException:
            await self._end()
            raise

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self._cursor.__aexit__(*exc_info)
        finally:
            await self._end()

    async def _end(self) -> None:
        shared = self._shared
        try:
            if shared._auto_pending:
                await shared._undo_failed_auto()
        finally:
            shared._let_go()


class _Cursor:
    """A cursor of the shared connection: each statement goes through :meth:`SharedConnection.statement`."""

    def __init__(self, shared: SharedConnection, cursor: Any) -> None:
        self._shared, self._cursor = shared, cursor

    async def execute(self, sql: Any, *args: Any, **kwargs: Any) -> Any:
        sent = self._shared.statement(self._cursor, "execute", sql, *args, **kwargs)
        return await self._shared.watched(sql, args, kwargs, sent)

    async def executemany(self, sql: Any, *args: Any, **kwargs: Any) -> Any:
        sent = self._shared.statement(self._cursor, "executemany", sql, *args, **kwargs)
        return await self._shared.watched(sql, args, kwargs, sent)

    async def callproc(self, name: str, *args: Any, **kwargs: Any) -> Any:  # aiopg
        await self._shared._flush()
        sql = recording.callproc_sql(name, recording.params_of(args, kwargs))
        return await self._shared.watched(sql, args, kwargs, self._cursor.callproc(name, *args, **kwargs))

    def executescript(self, *args: Any, **kwargs: Any) -> Any:  # aiosqlite
        raise TransactionControlError(SCRIPT)

    def __aiter__(self) -> Any:
        return self._cursor.__aiter__()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class AioConnectionStandIn:
    """Stands in for ``database.aio_connection``: in a block, every ``async with`` yields its shared connection.

    :param block: the calling task's block (an engine with a ``connection()`` that opens it on first use), or None
        outside every block, where ``beneath`` (what was there before) serves.
    """

    def __init__(self, block: Callable[[], Any], beneath: Callable[[], Any]) -> None:
        self._block, self._beneath = block, beneath

    def __call__(self) -> Any:
        case = self._block()
        return self._beneath() if case is None else ConnectionScope(case.connection)


class ConnectionScope:
    """One ``async with database.aio_connection()``: yields the shared connection and, as peewee-async does,
    sets its connection context for the block (``aio_begin()`` and ``aio_savepoint()`` require it)."""

    def __init__(self, connection: Callable[[], Awaitable[SharedConnection]]) -> None:
        self._connection = connection
        self._token: contextvars.Token[ConnectionContext | None] | None = None

    async def __aenter__(self) -> SharedConnection:
        shared = await self._connection()
        context = connection_context.get()
        if context is None or context.connection is not shared:
            self._token = connection_context.set(ConnectionContext(shared))
        return shared

    async def __aexit__(self, *exc_info: object) -> None:
        token, self._token = self._token, None
        if token is not None:
            connection_context.reset(token)
