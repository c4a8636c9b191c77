import pytest
from library.models import Book, Genre


async def test_the_seed_data_is_there():
    names = [genre.name for genre in await Genre.select().aio_execute()]
    assert sorted(names) == ["Crime", "Poetry"]


async def test_names_are_case_insensitive():  # citext, from schema/extensions.sql
    assert (await Genre.aio_get(Genre.name == "poetry")).name == "Poetry"


async def test_the_trigger_counts_books():  # made by migration 002
    crime = await Genre.aio_get(name="Crime")
    await Book.aio_create(title="The Big Sleep", genre=crime)
    assert (await Genre.aio_get(name="Crime")).books == 1


async def test_a_test_that_changes_the_seed_data_is_undone():
    await Genre.delete().aio_execute()
    assert await Genre.select().aio_count() == 0


@pytest.mark.peewee_db(isolation="clear")
def test_a_clearing_test_too():
    with Genre._meta.database.allow_sync():
        Genre.delete().execute()


async def test_the_genres_are_back():
    assert await Genre.select().aio_count() == 2
