import pytest
from conftest import Author, Book

from peewee_async_testing import assert_queries_match


async def titles_by_author():  # the code under test
    books = await Book.select(Book, Author).join(Author).aio_execute()
    return {book.author.name: book.title for book in books}


async def titles_one_by_one():  # the same, with an N+1
    titles = {}
    for book in await Book.select().aio_execute():
        author = await Author.aio_get(Author.id == book.author_id)
        titles[author.name] = book.title
    return titles


@pytest.fixture
async def library():
    for name in ("ada", "grace", "hedy"):
        author = await Author.aio_create(name=name)
        await Book.aio_create(title=f"{name}'s notes", author=author)


async def test_one_query_for_all_titles(library, peewee_assert_num_queries):
    async with peewee_assert_num_queries(1):
        assert len(await titles_by_author()) == 3


async def test_the_n_plus_one_is_named(library, peewee_assert_max_num_queries):
    with pytest.raises(AssertionError) as failure:
        async with peewee_assert_max_num_queries(1):
            await titles_one_by_one()
    assert "The same SELECT ran 3 times with different parameters" in str(failure.value)


@pytest.mark.peewee_db(allow_transactions=True)
async def test_what_ran(library, peewee_capture_queries, peewee_database):
    # aio_atomic()'s BEGIN and COMMIT are listed, not counted
    async with peewee_capture_queries() as captured, peewee_database.aio_atomic():
        await Author.update(name="Ada").where(Author.name == "ada").aio_execute()
    assert len(captured) == 1
    assert captured[0].sql.startswith('UPDATE "author"')
    assert captured[0].params == ["Ada", "ada"]
    assert [query.transaction for query in captured.all] == [True, False, True]


@assert_queries_match(Author._meta.database, r'^SELECT .* FROM "author"', count=1)
async def test_a_decorator_checks_the_whole_test(library):
    assert await Author.select().aio_count() == 3
