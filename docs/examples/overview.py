import asyncio

import peewee
import peewee_async

from peewee_async_testing import PostgresServer, TransactionTestCase


class User(peewee_async.AioModel):
    name = peewee.CharField()


async def main(database: peewee_async.PostgresqlDatabase) -> None:
    User.bind(database)
    await database.aio_create_tables([User])

    async with TransactionTestCase(database):
        await User.aio_create(name="ada")
        assert await User.select().aio_count() == 1  # the block sees its own writes

    assert await User.select().aio_count() == 0  # and nothing survives it

    await database.aio_drop_tables([User])
    await database.aio_close()


with PostgresServer() as server:  # a private PostgreSQL, removed on exit
    asyncio.run(
        main(peewee_async.PostgresqlDatabase(**server.connect_params("postgres")))
    )
