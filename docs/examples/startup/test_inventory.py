from inventory import Product, database


async def test_start_up_ran_and_kept_the_test_database(client):
    assert (await client.get("/")).json() == {"shop": "Our shop", "products": 0}
    assert database.database == "test_inventory"


async def test_what_the_handler_wrote_is_in_the_test_database(client):
    assert (await client.post("/products", params={"name": "lamp"})).status_code == 201
    assert await Product.select().aio_count() == 1


async def test_the_previous_test_left_nothing(client):
    assert (await client.get("/")).json()["products"] == 0
