from shop import Customer, Order, database


async def test_an_order():
    customer = await Customer.aio_create(email="ada@example.com")
    await Order.aio_create(customer=customer)
    assert await Order.select().aio_count() == 1


async def test_isolated_from_the_test_before():
    assert await Customer.select().aio_count() == 0
    await Customer.aio_create(email="ada@example.com")  # unique: the first was undone


async def test_on_the_test_database(peewee_server):
    # a throwaway MariaDB server here (or the one --peewee-dsn mysql://... names)
    assert type(peewee_server).__name__ == "MariaDBServer"
    assert database.database == "test_shop"
