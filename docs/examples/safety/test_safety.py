import pytest

from peewee_async_testing import DatabaseAccessError
from shop.db import Item, database


@pytest.fixture(scope="module")
async def catalogue():
    # A wider fixture reaches the test database, not the real one,
    # without naming any fixture for it.
    await Item.aio_create(name="catalogue")
    yield
    await Item.delete().aio_execute()


@pytest.mark.peewee_db
async def test_an_isolated_test_sees_the_test_database(catalogue):
    assert database.database == "test_shop"
    await Item.aio_create(name="mine")
    assert await Item.select().aio_count() == 2


async def test_a_test_that_is_not_isolated_is_refused():
    with pytest.raises(DatabaseAccessError, match="not isolated"):
        await Item.aio_create(name="would outlive the test")
