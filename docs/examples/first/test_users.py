from app import User


async def test_signup():
    await User.aio_create(name="ada")
    assert await User.select().aio_count() == 1


async def test_the_next_test_starts_empty():
    assert await User.select().aio_count() == 0
