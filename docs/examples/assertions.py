import asyncio
import os
import tempfile

import peewee
import peewee_async

from peewee_async_testing import (
    TransactionTestCase,
    assert_database_count,
    assert_database_has,
    assert_database_missing,
)


class Customer(peewee_async.AioModel):
    email = peewee.CharField(unique=True)
    age = peewee.IntegerField()


async def main(database: peewee_async.SqliteDatabase) -> None:
    database.bind([Customer])
    await database.aio_create_tables([Customer])
    async with TransactionTestCase(database):  # the assertions see its rows
        await Customer.aio_create(email="ada@example.com", age=36)
        await Customer.aio_create(email="grace@example.com", age=45)

        await assert_database_has(Customer, Customer.age > 30, email="ada@example.com")
        await assert_database_missing(Customer, email="linus@example.com")
        await assert_database_count(Customer, 2, Customer.age > 30)
        await assert_database_has("customer", database=database, age=45)  # a table

        try:
            await assert_database_has(Customer, email="ada@example.com", age=37)
            raise RuntimeError("the assertion passed")
        except AssertionError as failure:
            assert "age=36, id=1  (not met: age == 37)" in str(failure)
    await assert_database_missing(Customer)  # rolled back
    await database.aio_close()


with tempfile.TemporaryDirectory() as folder:
    asyncio.run(main(peewee_async.SqliteDatabase(os.path.join(folder, "shop.db"))))
