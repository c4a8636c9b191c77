from guestbook import Entry


async def test_the_test_sees_what_the_handler_wrote(client):
    async with client:
        response = await client.post("/entries", json={"name": "Ada"})
        assert response.status == 201
        assert await (await client.get("/entries")).json() == ["Ada"]
    assert await Entry.select().aio_count() == 1  # in the test transaction


async def test_the_previous_test_left_nothing(client):
    assert await Entry.select().aio_count() == 0
    async with client:
        assert await (await client.get("/entries")).json() == []


async def test_the_handler_sees_what_the_test_wrote(client):
    await Entry.aio_create(name="Grace")  # not committed: only this transaction has it
    async with client:
        assert await (await client.get("/entries")).json() == ["Grace"]
