import asyncio

import peewee
import peewee_async

from peewee_async_testing import PostgresServer, TransactionTestCase


class Author(peewee_async.AioModel):
    name = peewee.CharField(unique=True)


async def main(database: peewee_async.PostgresqlDatabase) -> None:
    Author.bind(database)
    await database.aio_create_tables([Author])

    # An exception propagates; the rows are rolled back all the same.
    try:
        async with TransactionTestCase(database):
            await Author.aio_create(name="ada")
            raise RuntimeError("the test failed")
    except RuntimeError as error:
        assert str(error) == "the test failed"
    assert await Author.select().aio_count() == 0

    # Queries from many tasks at once share the one connection, one statement at a time.
    async with TransactionTestCase(database) as case:
        await asyncio.gather(
            *(Author.aio_create(name=f"author {i}") for i in range(50))
        )
        assert await Author.select().aio_count() == 50
        assert case.connection is not None

        # The code under test may not open transactions of its own inside the block.
        try:
            async with database.aio_atomic():
                pass
        except ValueError as error:
            assert "disabled inside TransactionTestCase" in str(error)
        else:
            raise AssertionError("aio_atomic() should have been refused")

    # Each call of a decorated function gets a fresh transaction.
    @TransactionTestCase(database)
    async def create(name: str) -> int:
        await Author.aio_create(name=name)
        return await Author.select().aio_count()

    assert await create("grace") == 1
    assert (
        await create("grace") == 1
    )  # no unique violation: the first row was rolled back

    await database.aio_drop_tables([Author])
    await database.aio_close()


with PostgresServer() as server:
    asyncio.run(
        main(peewee_async.PostgresqlDatabase(**server.connect_params("postgres")))
    )
