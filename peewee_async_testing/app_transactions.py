"""The code under test's own transactions inside a test transaction: refused, or run on savepoints.

The stand-ins replace the database's four public transaction methods for the block (through
:mod:`~peewee_async_testing.patches`), keyed by their names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, NoReturn

import peewee
from peewee_async import Transaction

from .connection import SharedConnection, inside_app_transaction

#: The methods a peewee-async database opens transactions with.
METHODS = ("aio_atomic", "aio_transaction", "aio_begin", "aio_savepoint")


def stand_ins(allowed: bool, connection: Callable[[], Awaitable[SharedConnection]]) -> dict[str, Callable[..., Any]]:
    """The four methods as the block's code sees them: refusing with ``ValueError``, or (``allowed``) opening
    savepoints on the block's ``connection()``, with peewee-async's rules."""
    return _savepoints(connection) if allowed else _REFUSING


class Savepoint(Transaction):  # type: ignore[misc]
    """A transaction of the code under test, inside the test's: ``commit()`` releases, ``rollback()`` rolls back.

    What ``aio_begin()`` and ``aio_savepoint()`` return, and what ``aio_atomic()`` and ``aio_transaction()``
    use, when the test allows transactions.
    """

    def __init__(self, connection: SharedConnection) -> None:
        super().__init__(connection, is_savepoint=True)

    async def execute(self, sql: str) -> None:
        await self.connection.control(sql)


def _refusing(name: str) -> Callable[..., NoReturn]:
    def refuse(*args: object, **kwargs: object) -> NoReturn:
        raise ValueError(
            f"{name}() is disabled inside TransactionTestCase: every query of the test runs in one transaction "
            "that is rolled back at the end, and a transaction of the code under test would commit or end it. "
            "Let it run on savepoints instead with TransactionTestCase(allow_transactions=True) "
            "(pytest: @pytest.mark.peewee_db(allow_transactions=True), or for every test "
            "`peewee_async_allow_transactions = true` in the ini file), or use the `clear_tables` fixture."
        )

    return refuse


_REFUSING = {name: _refusing(name) for name in METHODS}


def _savepoints(connection: Callable[[], Awaitable[SharedConnection]]) -> dict[str, Callable[..., Any]]:
    @asynccontextmanager
    async def block(*, nestable: bool) -> AsyncIterator[None]:
        if not nestable and inside_app_transaction():
            raise peewee.OperationalError("Transaction already opened")
        shared = await connection()
        async with shared.transaction_block(), Savepoint(shared):
            yield

    def aio_atomic() -> AbstractAsyncContextManager[None]:
        return block(nestable=True)

    def aio_transaction() -> AbstractAsyncContextManager[None]:
        return block(nestable=False)

    async def aio_begin() -> Savepoint:
        savepoint = Savepoint(await connection())
        await savepoint.begin()
        return savepoint

    return {
        "aio_atomic": aio_atomic,
        "aio_transaction": aio_transaction,
        "aio_begin": aio_begin,
        "aio_savepoint": aio_begin,
    }
