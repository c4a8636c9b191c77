from notes import Note


async def test_the_test_sees_what_the_handler_wrote(client):
    assert (await client.post("/notes", json={"text": "milk"})).status_code == 201
    assert await Note.select().aio_count() == 1


async def test_the_previous_test_left_nothing(client):
    assert (await client.get("/notes")).json() == []


async def test_the_handler_sees_what_the_test_wrote(client):
    await Note.aio_create(text="eggs")  # not committed: only this transaction has it
    assert (await client.get("/notes")).json() == ["eggs"]
