"""TransactionTestCase: a block of async code in one transaction on one connection, rolled back at the end.

The public face: options, ``async with``, the decorator, ``connection`` and ``nested``. Each entry runs on a
fresh :class:`~peewee_async_testing.engine.CaseEngine`, whose module says the steps in the order they run.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from peewee_async.databases import AioDatabase

from ._database import resolve_database
from .engine import CaseEngine
from .exceptions import TransactionError
from .options import CASE_OPTIONS

if TYPE_CHECKING:
    from .pools import LoopPool

P = ParamSpec("P")
R = TypeVar("R")


class TransactionTestCase:
    """Run a block of async code in one transaction on one connection, and roll it all back on exit.

    Every query of the block, from any task, runs on the same connection inside the same transaction,
    so the block sees its own writes and nothing it writes survives. Patches are undone and the
    connection goes back to the pool however the block ends (return, exception, cancellation, a dead
    connection). Opened while another is active on the same database, it shares that one's connection
    and runs on a savepoint: data made in the outer block is seen by the inner one, whose own changes
    are undone.

    :param database: a peewee-async database (``PostgresqlDatabase``, ``Psycopg3Database``,
        ``MySQLDatabase``, ``SqliteDatabase``) or a :class:`peewee.DatabaseProxy` initialised with one.
        Anything else (None, a module, a class, a plain peewee database, an empty proxy, another backend)
        raises :class:`~peewee_async_testing.DatabaseArgumentError`, a ``TypeError``, at once. On MySQL a
        statement that commits implicitly (DDL) or a deadlock ends the test transaction: the block then
        fails, naming it (docs: "MySQL and MariaDB").
    :param allow_transactions: let the code under test open transactions: ``aio_atomic()`` and
        ``aio_transaction()`` run on savepoints, released on success and rolled back to on an exception,
        and ``aio_begin()``/``aio_savepoint()`` return savepoints whose ``commit()`` releases them. By
        default they raise ``ValueError``.
    :param autosavepoint: run every statement under its own savepoint (PostgreSQL), so that after a
        database error (say ``peewee.IntegrityError``) the block can go on querying. One more round trip
        per statement. MySQL and SQLite go on after an error anyway: there it does nothing.
    :param reset_sequences: at the start, set every sequence a column owns one past the largest value
        the block sees in that column (its start value when empty), so that ids depend only on the
        visible rows and are the same on every run; on exit, set every sequence back to where it was
        on entry (PostgreSQL, and MySQL's AUTO_INCREMENT counters, outside the transaction: not in a nested
        block there; SQLite's ids repeat anyway).

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
        self._engine: CaseEngine | None = None

    def __repr__(self) -> str:
        state = "active" if self._engine is not None and self._engine.patched else "inactive"
        return f"<TransactionTestCase {state} on {self.database.database!r}>"

    @property
    def connection(self) -> Any:
        """The block's connection while its transaction is open, else ``None``: what ``database.aio_connection()``
        hands out in the block, the driver's connection wrapped so that its statements run inside the
        transaction, one at a time, with transaction control on savepoints or refused (as for the database's
        queries). Its ``raw`` is the driver's connection itself, which bypasses all of that."""
        return None if self._engine is None else self._engine.shared

    @property
    def nested(self) -> bool:
        """Whether this case runs on a savepoint inside another case on the same database."""
        return self._engine is not None and self._engine.outer is not None

    def engine(self, *, loop_pool: LoopPool | None = None, outer: TransactionTestCase | None = None) -> CaseEngine:
        """A fresh engine for one entry into this case, for test frameworks that drive its phases themselves
        (the pytest plugin, :class:`~peewee_async_testing.AioDatabaseTestCase`); ``async with`` uses one too.

        :param loop_pool: a connection kept from one entry to the next serves instead of one from the pool.
        :param outer: the case to nest in (on a savepoint); by default the innermost one open on the database
            in this task.
        """
        if self._engine is not None and self._engine.patched:
            raise TransactionError("This TransactionTestCase is already active; create one per block.")
        self._engine = CaseEngine(
            self.database,
            **{name: getattr(self, name) for name in CASE_OPTIONS},
            loop_pool=loop_pool,
            outer=None if outer is None else outer._engine,
        )
        return self._engine

    async def __aenter__(self) -> TransactionTestCase:
        engine = self.engine()
        engine.patch()
        try:
            await engine.connection()
        except BaseException as error:
            await engine.close(type(error), error, error.__traceback__)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._engine is None or not self._engine.patched:
            raise TransactionError("TransactionTestCase.__aexit__ called without a matching __aenter__.")
        await self._engine.close(exc_type, exc, traceback)

    def __call__(self, function: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        """Decorate an async function so that each call runs in a fresh TransactionTestCase."""
        if not inspect.iscoroutinefunction(function):
            raise TypeError(
                f"TransactionTestCase decorates async functions (async def), not {function!r}. "
                "Synchronous queries cannot see the test transaction: use the clear_tables fixture for them."
            )

        @functools.wraps(function)
        async def run_in_transaction(*args: P.args, **kwargs: P.kwargs) -> R:
            async with self.copy():
                return await function(*args, **kwargs)

        return run_in_transaction

    def copy(self) -> TransactionTestCase:
        """A new, inactive case on the same database with the same options."""
        return TransactionTestCase(self.database, **{name: getattr(self, name) for name in CASE_OPTIONS})
