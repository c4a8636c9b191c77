import asyncio

import peewee
import peewee_async
from peewee_async.testing import TransactionTestCase as UpstreamTransactionTestCase

from peewee_async_testing import PostgresServer, TransactionTestCase


class Author(peewee_async.AioModel):
    name = peewee.CharField(unique=True)


async def main(database: peewee_async.PostgresqlDatabase) -> None:
    Author.bind(database)
    await database.aio_create_tables([Author])

    # The same block works with either class: migrating is changing the import.
    for case in (UpstreamTransactionTestCase, TransactionTestCase):
        async with case(database):
            await Author.aio_create(name="ada")
            assert await Author.select().aio_count() == 1
        assert await Author.select().aio_count() == 0

    # What peewee-async's own class cannot do: concurrent queries on aiopg, and code
    # that opens transactions.
    async with TransactionTestCase(database, allow_transactions=True):
        await asyncio.gather(
            *(Author.aio_create(name=f"author {i}") for i in range(20))
        )
        _, created = await Author.aio_get_or_create(name="author 3")
        assert not created
    assert await Author.select().aio_count() == 0

    await database.aio_drop_tables([Author])
    await database.aio_close()


with PostgresServer() as server:
    asyncio.run(
        main(peewee_async.PostgresqlDatabase(**server.connect_params("postgres")))
    )
