from conftest import Event


async def test_create():
    await Event.aio_create(name="launch")
    assert await Event.select().aio_count() == 1


async def test_isolated_from_the_test_before():
    assert await Event.select().aio_count() == 0
