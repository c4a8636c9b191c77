import asyncio

import peewee
import peewee_async

from peewee_async_testing import (
    ConfigurationError,
    PostgresServer,
    aio_clear_tables,
    clear_tables,
)


class Customer(peewee_async.AioModel):
    email = peewee.CharField(unique=True)


class Order(peewee_async.AioModel):
    customer = peewee.ForeignKeyField(Customer, backref="orders")


async def main(database: peewee_async.PostgresqlDatabase) -> None:
    database.bind([Customer, Order])
    await database.aio_create_tables([Customer, Order])

    ada = await Customer.aio_create(
        email="ada@example.com"
    )  # committed: no test transaction here
    await Order.aio_create(customer=ada)
    with database.allow_sync():  # synchronous code sees committed rows
        assert Order.select().count() == 1

    await aio_clear_tables(database)  # one TRUNCATE ... RESTART IDENTITY CASCADE
    assert await Customer.select().aio_count() == 0
    assert (
        await Customer.aio_create(email="grace@example.com")
    ).id == 1  # ids start again

    clear_tables(database, strategy="delete")  # the synchronous twin
    assert await Customer.select().aio_count() == 0

    # Not a test database (not named test_..., not on a throwaway server of
    # this process): refused before anything connects to it.
    shop = peewee_async.PostgresqlDatabase("shop", host="db.example.com")
    try:
        await aio_clear_tables(shop)
        raise AssertionError("a database that is not a test database was cleared")
    except ConfigurationError as refused:
        assert "allow_any_database=True" in str(refused)

    await database.aio_drop_tables([Customer, Order])
    await database.aio_close()


with PostgresServer() as server:
    admin = server.connect("postgres")
    admin.cursor().execute("CREATE DATABASE test_example")  # a test database
    try:
        params = server.connect_params("test_example")
        asyncio.run(main(peewee_async.PostgresqlDatabase(**params)))
    finally:
        admin.cursor().execute("DROP DATABASE test_example")
        admin.close()
