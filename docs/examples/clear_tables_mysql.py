import asyncio

import peewee
import peewee_async

from peewee_async_testing import MariaDBServer, aio_clear_tables, clear_tables
from peewee_async_testing.writes import WriteTracker

database = peewee_async.MySQLDatabase(None)


class Customer(peewee_async.AioModel):
    email = peewee.CharField(unique=True)

    class Meta:
        database = database


class Order(peewee_async.AioModel):
    customer = peewee.ForeignKeyField(Customer)

    class Meta:
        database = database


async def checks() -> int:
    rows = await database.aio_execute_sql(
        "SELECT @@SESSION.foreign_key_checks",
        fetch_results=peewee_async.databases.fetchall,
    )
    return int(rows[0][0])


async def main() -> None:
    await database.aio_create_tables([Customer, Order])

    ada = await Customer.aio_create(email="ada@example.com")
    await Order.aio_create(customer=ada)
    # Foreign key checks off, TRUNCATE TABLE each, checks back: one round trip
    # (after the one that asks which tables exist).
    await aio_clear_tables(database)
    assert await Order.select().aio_count() == 0
    assert await checks() == 1, "the checks are back as they were"
    ada = await Customer.aio_create(email="ada@example.com")
    assert ada.id == 1, "TRUNCATE resets AUTO_INCREMENT"

    # DELETE children first, then ALTER TABLE ... AUTO_INCREMENT = 1: cheaper
    # for a test's few rows. The synchronous twin does the same.
    await Order.aio_create(customer=ada)
    clear_tables(database, strategy="delete")
    assert (await Customer.aio_create(email="grace@example.com")).id == 1

    # The write tracker reads MySQL's statements, backticks too: only the
    # table written to is emptied; the customer stays.
    async with WriteTracker(database) as tracker:
        await database.aio_execute_sql(
            "INSERT INTO `order` (customer_id) VALUES (1)"
            " ON DUPLICATE KEY UPDATE customer_id = 1"
        )
    assert tracker.written([Customer, Order]) == [Order]
    await tracker.aio_clear([Customer, Order])
    assert await Order.select().aio_count() == 0
    assert await Customer.select().aio_count() == 1

    await database.aio_drop_tables([Customer, Order])
    await database.aio_close()


with MariaDBServer() as server:
    connection = server.connect()
    with connection.cursor() as cursor:
        cursor.execute("CREATE DATABASE test_shop")
    connection.close()
    database.init(**server.connect_params("test_shop"))
    asyncio.run(main())
