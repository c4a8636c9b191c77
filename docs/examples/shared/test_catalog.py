import pytest
from conftest import Author, Book


@pytest.fixture(scope="module")
async def ada(peewee_module_transaction):
    # Made once, seen by every test of the module.
    return await Author.aio_create(name="ada")


async def test_add_a_book(ada):  # runs on a savepoint: undone afterwards
    await Book.aio_create(title="Notes", author=ada)
    assert await Book.select().aio_count() == 1


async def test_the_book_is_gone_the_author_is_not(ada):
    assert await Book.select().aio_count() == 0
    assert await Author.select().aio_count() == 1
