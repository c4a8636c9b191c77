import pytest
from app import Note

pytestmark = pytest.mark.peewee_db(
    allow_transactions=True
)  # the handler opens aio_atomic() blocks


async def test_post_then_get(client):
    assert (await client.post("/notes", json={"text": "hello"})).status_code == 201
    assert (await client.get("/notes")).json() == ["hello"]
    assert await Note.select().aio_count() == 1  # the test sees what the handler wrote


async def test_the_previous_test_left_nothing(client):
    assert (await client.get("/notes")).json() == []


async def test_a_duplicate_is_refused_and_the_test_goes_on(client):
    await client.post("/notes", json={"text": "hello"})
    assert (await client.post("/notes", json={"text": "hello"})).status_code == 409
    assert (await client.get("/notes")).json() == ["hello"]
