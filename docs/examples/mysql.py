import asyncio

import peewee
import peewee_async

from peewee_async_testing import MariaDBServer, TransactionError, TransactionTestCase

database = peewee_async.MySQLDatabase(None)


class Author(peewee_async.AioModel):
    name = peewee.CharField(unique=True)

    class Meta:
        database = database


async def main() -> None:
    await database.aio_create_tables([Author])

    # Every write of the block is rolled back, as on PostgreSQL.
    async with TransactionTestCase(database):
        await Author.aio_create(name="ada")
        assert await Author.select().aio_count() == 1
    assert await Author.select().aio_count() == 0

    # A statement that commits implicitly ends the test transaction: the block
    # fails and names it. The row written before it was committed; the one
    # written after it was rolled back.
    try:
        async with TransactionTestCase(database):
            await Author.aio_create(name="before")
            await database.aio_execute_sql("CREATE TABLE audit (id INT)")
            await Author.aio_create(name="after")
    except TransactionError as error:
        assert "'CREATE TABLE audit (id INT)'" in str(error)
    names = [author.name for author in await Author.select().aio_execute()]
    assert names == ["before"]
    await Author.delete().aio_execute()

    # reset_sequences: ids start one past the rows the block sees, and the
    # AUTO_INCREMENT counter is set back afterwards.
    for _ in range(2):
        async with TransactionTestCase(database, reset_sequences=True):
            assert (await Author.aio_create(name="grace")).id == 1

    await database.aio_drop_tables([Author])
    await database.aio_execute_sql("DROP TABLE audit")
    await database.aio_close()


with MariaDBServer() as server:
    connection = server.connect()
    with connection.cursor() as cursor:
        cursor.execute("CREATE DATABASE test_shop")
    connection.close()
    database.init(**server.connect_params("test_shop"))
    asyncio.run(main())
