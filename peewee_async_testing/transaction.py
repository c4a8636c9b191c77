"""TransactionTestCase: one dedicated connection, one transaction, rolled back at the end.

The steps, in order (each undone in reverse on exit, whatever happened in the block):

1. take one connection from the database's pool (connecting the pool first if needed);
2. patch ``database.aio_connection`` so that every query of the block runs on that connection,
   one statement at a time (several tasks may query at once);
3. make ``aio_atomic()``, ``aio_transaction()``, ``aio_begin()`` and ``aio_savepoint()`` raise ``ValueError``
   (or, with ``allow_transactions``, open savepoints);
4. ``BEGIN`` (or, nested in another case on the same database, ``SAVEPOINT``);
5. ``ROLLBACK``, restore every patch, and give the connection back (or close it when it is broken).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import uuid
import weakref
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, ExitStack
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from peewee_async.databases import AioDatabase

from ._compat import TRANSACTION_METHODS, add_note
from ._database import is_postgres, resolve_database
from .connection import (
    Borrowed,
    SharedConnection,
    close,
    in_transaction,
    is_closed,
    refusing,
    savepoint_transactions,
)
from .exceptions import TransactionError

if TYPE_CHECKING:
    from .pools import LoopPool

P = ParamSpec("P")
R = TypeVar("R")

#: The innermost TransactionTestCase open on each database.
_active: weakref.WeakKeyDictionary[AioDatabase, TransactionTestCase] = weakref.WeakKeyDictionary()

_MISSING = object()

#: The keyword options of TransactionTestCase.
OPTIONS = ("allow_transactions", "autosavepoint", "reset_sequences")

# The last value of every sequence the user can read (NULL when unused, or unreadable), by oid: as pg_sequences
# has it, for less work.
_READ_SEQUENCE = "CASE WHEN has_sequence_privilege({0}, 'SELECT,USAGE') THEN pg_sequence_last_value({0}) END"
_SEQUENCES = (
    f"SELECT c.oid::bigint, {_READ_SEQUENCE.format('c.oid')} FROM pg_catalog.pg_class AS c "
    "WHERE c.relkind = 'S' AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace) "
    "AND NOT pg_is_other_temp_schema(c.relnamespace)"
)
# Set back the sequences whose last value differs from the one on entry; {values}: (oid, last value) literals.
_RESET_SEQUENCES = (
    "SELECT pg_catalog.setval(v.oid, coalesce(v.last_value, s.seqstart), v.last_value IS NOT NULL) "
    "FROM (VALUES {values}) AS v (oid, last_value) JOIN pg_catalog.pg_sequence AS s ON s.seqrelid = v.oid "
    f"WHERE {_READ_SEQUENCE.format('v.oid')} IS DISTINCT FROM v.last_value"
)


def _reset_sequences(sequences: list[tuple[int, int | None]]) -> str:
    """The statement that sets the ``(oid, last value)`` sequences back, their numbers written out: so it
    needs no parameters, and can travel with the ``ROLLBACK``."""
    values = ", ".join(f"({int(oid)}::oid, {'NULL' if last is None else int(last)}::bigint)" for oid, last in sequences)
    return _RESET_SEQUENCES.format(values=values)


OTHER_LOOP = (
    "This TransactionTestCase is nested in one opened on another event loop, and its connection belongs to "
    "that loop. Run the tests on the loop of the shared data: with pytest-asyncio, give the tests a loop_scope "
    "at least as wide as the shared fixture's scope, e.g. `asyncio_default_test_loop_scope = session` in the ini "
    'file or @pytest.mark.asyncio(loop_scope="module").'
)


def _patch(stack: ExitStack, obj: object, name: str, value: object) -> None:
    """Set ``obj.name`` on the instance and register the exact undo on ``stack``."""
    original = vars(obj).get(name, _MISSING)
    setattr(obj, name, value)

    def restore() -> None:
        if original is _MISSING:
            vars(obj).pop(name, None)
        else:
            setattr(obj, name, original)

    stack.callback(restore)


def _backend_pid(connection: Any) -> int | None:
    """The PostgreSQL server process of ``connection`` (known without a round trip), or ``None``."""
    if hasattr(connection, "raw"):  # aiopg
        return int(connection.raw.get_backend_pid())
    info = getattr(connection, "info", None)  # psycopg 3; SQLite has no server
    return None if info is None else int(info.backend_pid)


class TransactionTestCase:
    """Run a block of async code in one transaction on one connection, and roll it all back on exit.

    Every query of the block, from any task, runs on the same connection inside the same transaction,
    so the block sees its own writes and nothing it writes survives. Patches are undone and the
    connection goes back to the pool however the block ends (return, exception, cancellation, a dead
    connection). Opened while another is active on the same database, it shares that one's connection
    and runs on a savepoint: data made in the outer block is seen by the inner one, whose own changes
    are undone.

    :param database: a peewee-async database (``PostgresqlDatabase``, ``Psycopg3Database``,
        ``SqliteDatabase``) or a :class:`peewee.DatabaseProxy` initialised with one.
    :param allow_transactions: let the code under test open transactions: ``aio_atomic()`` and
        ``aio_transaction()`` run on savepoints, released on success and rolled back to on an exception,
        and ``aio_begin()``/``aio_savepoint()`` return savepoints whose ``commit()`` releases them. By
        default they raise ``ValueError``.
    :param autosavepoint: run every statement under its own savepoint (PostgreSQL), so that after a
        database error (say ``peewee.IntegrityError``) the block can go on querying. One more round trip
        per statement.
    :param reset_sequences: on exit, set every sequence that moved back to where it was on entry
        (PostgreSQL), so that ids are the same on every run.

    Example::

        async with TransactionTestCase(database) as case:
            await User.aio_create(name="ada")
            assert await User.select().aio_count() == 1
        assert await User.select().aio_count() == 0

    It also decorates async functions; each call gets a fresh transaction::

        @TransactionTestCase(database, allow_transactions=True)
        async def test_signup():
            ...
    """

    def __init__(
        self,
        database: Any,
        *,
        allow_transactions: bool = False,
        autosavepoint: bool = False,
        reset_sequences: bool = False,
    ) -> None:
        self.database: AioDatabase = resolve_database(database, purpose="TransactionTestCase")
        self.allow_transactions = allow_transactions
        self.autosavepoint = autosavepoint
        self.reset_sequences = reset_sequences
        #: The dedicated driver connection while the block runs, else ``None``.
        self.connection: Any = None
        self._shared: SharedConnection | None = None
        self._outer: TransactionTestCase | None = None
        self._savepoint: str | None = None
        self._sequences: list[tuple[int, int | None]] | None = None
        self._pid: int | None = None
        self._pool: Any = None
        self._stack: ExitStack | None = None  # patches and registration, undone last
        self._async_stack = AsyncExitStack()  # connection and transaction, opened at first use
        self._begin_lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # where the connection was opened
        #: Lends the connection instead of the pool (the pytest plugin reuses one per event loop).
        self._lender: LoopPool | None = None

    def __repr__(self) -> str:
        state = "active" if self._stack is not None else "inactive"
        return f"<TransactionTestCase {state} on {self.database.database!r}>"

    @property
    def nested(self) -> bool:
        """Whether this case runs on a savepoint inside another case on the same database."""
        return self._outer is not None

    async def __aenter__(self) -> TransactionTestCase:
        self._start()
        try:
            await self._connection()
        except BaseException as error:
            await self._stop(type(error), error, error.__traceback__)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._stack is None:
            raise TransactionError("TransactionTestCase.__aexit__ called without a matching __aenter__.")
        await self._stop(exc_type, exc, traceback)

    def _start(self) -> None:
        """Register the case and patch the database: synchronous, no query yet (see :meth:`_connection`)."""
        if self._stack is not None:
            raise TransactionError("This TransactionTestCase is already active; create one per block.")
        database = self.database
        stack = ExitStack()
        try:
            self._outer = _active.get(database)
            stack.callback(self._deactivate, self._outer)
            _active[database] = self
            _patch(stack, database, "aio_connection", Borrowed(self._connection))
            replacements = savepoint_transactions(self._connection) if self.allow_transactions else {}
            for name in TRANSACTION_METHODS:  # refused inside the block, or turned into savepoints
                _patch(stack, database, name, replacements.get(name) or refusing(name))
        except BaseException:
            stack.close()
            raise
        self._stack, self._begin_lock = stack, asyncio.Lock()

    async def _stop(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        """Roll back and give the connection back (if it was opened), then undo the patches."""
        try:
            await self._finish(exc_type, exc, traceback)
        finally:
            self._unpatch()

    async def _finish(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        """Roll back and give the connection back, keeping the patches: a later query opens a new transaction."""
        await self._async_stack.__aexit__(exc_type, exc, traceback)

    def _unpatch(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()

    def _stop_on_own_loop(self) -> None:
        """:meth:`_stop` from synchronous code (a pytest fixture's tear-down), on the loop the block ran on.

        That loop is idle between a test and its fixtures' tear-down. A case with no transaction open
        has only its patches to undo.
        """
        try:
            if self._loop is not None:
                self._loop.run_until_complete(self._finish(None, None, None))
        finally:
            self._unpatch()

    async def _connection(self) -> SharedConnection:
        """The block's connection; the first call opens it: acquire (or share the outer's), BEGIN (or SAVEPOINT)."""
        shared = self._shared
        if shared is not None:
            return shared
        assert self._begin_lock is not None, "the case is not active"
        async with self._begin_lock:
            if self._shared is None:
                await self._begin(self._async_stack)
        assert self._shared is not None
        return self._shared

    async def _begin(self, stack: AsyncExitStack) -> None:
        stack.callback(self._forget)
        self._loop = asyncio.get_running_loop()
        shared = await self._connect(stack)
        if self.reset_sequences and shared.postgres:
            self._sequences = [(oid, value) for oid, value in await shared.fetch(_SEQUENCES)]
        if self._outer is None and shared.can_defer:
            shared.deferred = "BEGIN"  # goes with the block's first statement
        elif self._outer is None:
            await shared.control("BEGIN")
        else:
            self._savepoint = f"pwat_case_{uuid.uuid4().hex}"
            await shared.control(f"SAVEPOINT {self._savepoint}")
        stack.push_async_exit(self._roll_back)
        autosavepoint, shared.autosavepoint = shared.autosavepoint, self.autosavepoint
        stack.callback(setattr, shared, "autosavepoint", autosavepoint)
        self._shared = shared

    def __call__(self, function: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        """Decorate an async function so that each call runs in a fresh TransactionTestCase."""
        if not inspect.iscoroutinefunction(function):
            raise TypeError(
                f"TransactionTestCase decorates async functions (async def), not {function!r}. "
                "Synchronous queries cannot see the test transaction: use the clear_tables fixture for them."
            )

        @functools.wraps(function)
        async def run_in_transaction(*args: P.args, **kwargs: P.kwargs) -> R:
            async with self._copy():
                return await function(*args, **kwargs)

        return run_in_transaction

    def _copy(self) -> TransactionTestCase:
        return TransactionTestCase(self.database, **{name: getattr(self, name) for name in OPTIONS})

    def _deactivate(self, outer: TransactionTestCase | None) -> None:
        if outer is None:
            _active.pop(self.database, None)
        else:
            _active[self.database] = outer
        self._outer = None

    def _forget(self) -> None:
        """The transaction is over: the next query (if any) opens a new one."""
        self._shared, self._loop, self._savepoint, self.connection, self._sequences = None, None, None, None, None

    async def _connect(self, stack: AsyncExitStack) -> SharedConnection:
        """The connection of the block: the outer case's, or a new one from the pool."""
        if self._outer is not None:
            if self._outer._shared is not None and self._outer._shared.loop is not asyncio.get_running_loop():
                raise TransactionError(OTHER_LOOP)
            shared = await self._outer._connection()
            self.connection = self._outer.connection
            return shared
        database = self.database
        self._pool = database.pool_backend
        if self._lender is not None:
            self.connection = await self._lender.reserved()
        else:
            if not database.is_connected:
                await database.aio_connect()
                self._pool = database.pool_backend
            self.connection = await self._pool.acquire()
            stack.push_async_callback(self._give_back)
        self._pid = _backend_pid(self.connection)
        return SharedConnection(self.connection, postgres=is_postgres(database))

    async def _roll_back(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> bool:
        """Roll back (to the savepoint, when nested); a failure never hides the block's own exception."""
        assert self._shared is not None
        problem = ""
        try:
            if self._savepoint is None and self._shared.deferred:  # no statement ran: nothing began
                self._shared.deferred = None
            elif not is_closed(self.connection):
                if not in_transaction(self.connection):
                    problem = (
                        "the test transaction was ended inside the block (the code under test ran COMMIT or "
                        "ROLLBACK itself), so rows written before that may remain in the database"
                    )
                if self._savepoint is None:
                    statements = ["ROLLBACK"]
                elif not problem:
                    statements = [f"ROLLBACK TO SAVEPOINT {self._savepoint}"]
                else:
                    statements = []  # no savepoint left to roll back to
                if self._sequences:  # after the rollback: setval() is not transactional
                    statements.append(_reset_sequences(self._sequences))
                if statements == ["ROLLBACK"] and self._lender is not None and self._shared.can_defer:
                    # Only a ROLLBACK may leave its reply unread: the server undoes the transaction as the
                    # statement arrives, before any later statement of this connection. A setval() is seen by
                    # other connections at once, so the block must not end before it has run.
                    await self._lender.roll_back(self._shared)
                elif statements:
                    await self._shared.control(*statements)
        except Exception as error:
            # A connection that died took its transaction with it: the server keeps nothing of it.
            if not is_closed(self.connection):
                problem = problem or f"ROLLBACK failed ({type(error).__name__}: {error}); rows may remain"
                if not self.nested:
                    await close(self.connection)
        except BaseException:  # cancelled while rolling back: never hand an open transaction to the pool
            await close(self.connection)
            raise
        if is_closed(self.connection) and self._pid is not None:
            await self._end_session(self._pid)
        if not problem:
            return False
        message = f"TransactionTestCase could not undo the block: {problem}."
        if exc is None:
            raise TransactionError(message)
        add_note(exc, message)
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
        await self._pool.release(self.connection)
