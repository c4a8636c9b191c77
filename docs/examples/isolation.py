import asyncio
import contextlib

import peewee
import peewee_async

from peewee_async_testing import PostgresServer, TransactionTestCase


class Account(peewee_async.AioModel):
    email = peewee.CharField(unique=True)


async def sign_up(
    database: peewee_async.PostgresqlDatabase, email: str
) -> Account | None:
    """App code: opens its own transaction; a taken email is a normal outcome."""
    try:
        async with database.aio_transaction():
            return await Account.aio_create(email=email)
    except peewee.IntegrityError:
        return None


async def main(database: peewee_async.PostgresqlDatabase) -> None:
    Account.bind(database)
    await database.aio_create_tables([Account])

    # allow_transactions: the app's transactions run on savepoints inside the test's.
    async with TransactionTestCase(database, allow_transactions=True):
        assert await sign_up(database, "ada@example.com") is not None
        assert (
            await sign_up(database, "ada@example.com") is None
        )  # rolled back to its savepoint
        assert await Account.select().aio_count() == 1  # and the test goes on
    assert await Account.select().aio_count() == 0

    # autosavepoint: a database error does not abort the test transaction.
    async with TransactionTestCase(database, autosavepoint=True):
        await Account.aio_create(email="grace@example.com")
        with contextlib.suppress(peewee.IntegrityError):
            await Account.aio_create(email="grace@example.com")
        assert await Account.select().aio_count() == 1

    # reset_sequences: the same ids on every run.
    ids = []
    for _ in range(2):
        async with TransactionTestCase(database, reset_sequences=True):
            ids.append((await Account.aio_create(email="linus@example.com")).id)
    assert ids[0] == ids[1]

    # Nesting: data made once in the outer block is seen by each inner block,
    # whose own changes are undone.
    async with TransactionTestCase(database):
        await Account.aio_create(email="shared@example.com")
        for email in ("one@example.com", "two@example.com"):
            async with TransactionTestCase(
                database
            ):  # a SAVEPOINT on the outer block's connection
                await Account.aio_create(email=email)
                assert await Account.select().aio_count() == 2
        assert await Account.select().aio_count() == 1

    await database.aio_drop_tables([Account])
    await database.aio_close()


with PostgresServer() as server:
    asyncio.run(
        main(peewee_async.PostgresqlDatabase(**server.connect_params("postgres")))
    )
