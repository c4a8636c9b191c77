"""The code under test's own transactions inside a test transaction: refused, or run on savepoints.

The stand-ins replace the database's four public transaction methods for the block (through
:mod:`~peewee_async_testing.patches`), keyed by their names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, NoReturn

import peewee
from peewee_async import Transaction
from peewee_async.connection import connection_context

from .connection import ALLOW, ConnectionScope, SharedConnection, inside_app_transaction
from .drivers import no_active_transaction

NO_TRANSACTION = (
    "SAVEPOINT can only be used in transaction blocks: aio_savepoint() was called outside any transaction of the "
    "code under test (aio_atomic(), aio_transaction(), aio_begin()), where PostgreSQL refuses it in production too."
)

#: The methods a peewee-async database opens transactions with.
METHODS = ("aio_atomic", "aio_transaction", "aio_begin", "aio_savepoint")


def stand_ins(
    block: Callable[[], Any],
    connection: Callable[[], Awaitable[SharedConnection]],
    beneath: Mapping[str, Callable[..., Any]],
) -> dict[str, Callable[..., Any]]:
    """The four methods as the code under test sees them, in the calling task's block (``block()``, an engine): refusing
    with ``ValueError``, or (the block allows transactions) opening savepoints on the block's ``connection()``, with
    peewee-async's rules. Outside every block (``block()`` is None), the methods ``beneath`` serve."""
    savepoints = _savepoints(connection)

    def dispatching(name: str) -> Callable[..., Any]:
        def method(*args: Any, **kwargs: Any) -> Any:
            case = block()
            if case is None:
                return beneath[name](*args, **kwargs)
            return (savepoints if case.allow_transactions else _REFUSING)[name](*args, **kwargs)

        method.__name__ = method.__qualname__ = name
        return method

    return {name: dispatching(name) for name in METHODS}


class Savepoint(Transaction):  # type: ignore[misc]
    """A transaction of the code under test, inside the test's: ``commit()`` releases, ``rollback()`` rolls back.

    What ``aio_begin()`` and ``aio_savepoint()`` return, and what ``aio_atomic()`` and ``aio_transaction()``
    use, when the test allows transactions.
    """

    def __init__(self, connection: SharedConnection, *, root: bool, counted: bool = False) -> None:
        super().__init__(connection, is_savepoint=True)
        self.root = root  # a transaction in production (BEGIN), not a savepoint
        self._counted = counted  # among the connection's open aio_begin() transactions

    async def begin(self) -> None:
        await super().begin()
        self.connection.begun += self._counted

    async def commit(self) -> None:
        """Release the savepoint; as PostgreSQL's ``COMMIT`` of an aborted transaction, roll back a root one."""
        if self.root and self.connection.aborted():
            await self.execute(f"ROLLBACK TO SAVEPOINT {self.savepoint}; RELEASE SAVEPOINT {self.savepoint}")
        else:
            await super().commit()
        self._end()

    async def rollback(self) -> None:
        await super().rollback()
        self._end()

    def _end(self) -> None:
        self.connection.begun -= self._counted
        self._counted = False

    async def execute(self, sql: str) -> None:
        shared = self.connection
        await shared.watched(sql, (), {}, shared.control(sql))


def _refusing(name: str) -> Callable[..., NoReturn]:
    def refuse(*args: object, **kwargs: object) -> NoReturn:
        raise ValueError(
            f"{name}() is disabled inside TransactionTestCase: every query of the test runs in one transaction "
            "that is rolled back at the end, and a transaction of the code under test would commit or end it. " + ALLOW
        )

    return refuse


_REFUSING = {name: _refusing(name) for name in METHODS}


def _savepoints(connection: Callable[[], Awaitable[SharedConnection]]) -> dict[str, Callable[..., Any]]:
    @asynccontextmanager
    async def block(*, nestable: bool) -> AsyncIterator[None]:
        if not nestable and inside_app_transaction():
            raise peewee.OperationalError("Transaction already opened")
        root = not inside_app_transaction()
        async with ConnectionScope(connection) as shared, shared.transaction_block(), Savepoint(shared, root=root):
            yield

    def aio_atomic() -> AbstractAsyncContextManager[None]:
        return block(nestable=True)

    def aio_transaction() -> AbstractAsyncContextManager[None]:
        return block(nestable=False)

    async def begin(*, root: bool) -> Savepoint:
        if connection_context.get() is None:  # peewee-async's rule, in its words
            raise peewee.OperationalError("This method can only be called within the aio_connection context manager")
        shared = await connection()
        if not root and shared.postgres and not (inside_app_transaction() or shared.sql_transaction or shared.begun):
            raise no_active_transaction(shared.raw, NO_TRANSACTION)
        savepoint = Savepoint(shared, root=root, counted=root)
        await savepoint.begin()
        return savepoint

    async def aio_begin() -> Savepoint:
        return await begin(root=True)

    async def aio_savepoint() -> Savepoint:
        return await begin(root=False)

    return {
        "aio_atomic": aio_atomic,
        "aio_transaction": aio_transaction,
        "aio_begin": aio_begin,
        "aio_savepoint": aio_savepoint,
    }
