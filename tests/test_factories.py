"""ModelFactory: defaults, states, nested factories, explicit foreign keys, sequences, batches, isolation."""

from __future__ import annotations

from typing import Any

import pytest

from peewee_async_testing import (
    ConfigurationError,
    ModelFactory,
    TransactionTestCase,
    assert_num_queries,
    capture_queries,
)

from .models import Author, Book, Review


class AuthorFactory(ModelFactory[Author]):
    model = Author

    @classmethod
    def defaults(cls, n: int) -> dict[str, Any]:
        return {"name": f"Author {n}"}

    @classmethod
    def state_anonymous(cls) -> dict[str, Any]:
        return {"name": lambda n: f"Anonymous {n}"}

    @classmethod
    def state_famous(cls) -> dict[str, Any]:
        return {"name": "Famous"}


class BookFactory(ModelFactory[Book]):
    model = Book

    @classmethod
    def defaults(cls, n: int) -> dict[str, Any]:
        return {"title": f"Book {n}", "author": AuthorFactory}


class ReviewFactory(ModelFactory[Review]):
    model = Review

    @classmethod
    def defaults(cls, n: int) -> dict[str, Any]:
        return {"book": BookFactory, "stars": 5}


class NoStarsFactory(ModelFactory[Review]):
    model = Review


def test_build_makes_an_unsaved_instance_with_overrides_over_states_over_defaults() -> None:
    author = AuthorFactory.build()
    assert author.id is None
    assert author.name.startswith("Author ")
    assert AuthorFactory.state("famous").build().name == "Famous"
    assert AuthorFactory.state("famous").build(name="Ada").name == "Ada"
    assert AuthorFactory.state("anonymous").state("famous").build().name == "Famous"  # a later state wins
    assert AuthorFactory.state("famous", "anonymous").build().name.startswith("Anonymous ")


def test_build_builds_a_factory_value_unsaved() -> None:
    book = BookFactory.build()
    assert book.id is None
    assert book.author.id is None
    assert book.author.name.startswith("Author ")


def test_each_factory_counts_on_its_own() -> None:
    authors, books = AuthorFactory._sequence, BookFactory._sequence
    BookFactory.build()  # draws a book's number and, for its author, an author's
    AuthorFactory.build()
    assert (AuthorFactory._sequence, BookFactory._sequence) == (authors + 2, books + 1)


def test_a_callable_value_gets_the_sequence_number() -> None:
    name = AuthorFactory.state("anonymous").build().name
    assert name == f"Anonymous {AuthorFactory._sequence}"


def test_an_unknown_state_names_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match="no state 'admin'; its states are: anonymous, famous"):
        AuthorFactory.state("admin")


def test_a_required_field_without_a_value_is_named() -> None:
    with pytest.raises(ConfigurationError, match=r"NoStarsFactory gives no value for the required field Review\.book"):
        NoStarsFactory.build()


def test_an_unknown_field_is_named() -> None:
    with pytest.raises(ConfigurationError, match="Author has no field 'nick'"):
        AuthorFactory.build(nick="x")


async def test_create_saves_nested_factories_first_and_the_transaction_undoes_it(database: Any) -> None:
    async with TransactionTestCase(database):
        review = await ReviewFactory.create()
        assert review.id is not None
        assert review.book.id is not None
        assert review.book.author.id is not None
        fetched = await Review.select().where(Review.id == review.id).aio_get()
        assert fetched.book_id == review.book.id
        book = await Book.select().where(Book.id == review.book.id).aio_get()
        assert book.author_id == review.book.author.id
    assert await Author.select().aio_count() == 0
    assert await Review.select().aio_count() == 0


async def test_an_explicit_foreign_key_is_not_re_created(database: Any) -> None:
    async with TransactionTestCase(database):
        author = await AuthorFactory.create(name="Ada")
        async with capture_queries(database) as captured:
            by_instance = await BookFactory.create(author=author)
            by_id = await BookFactory.create(author_id=author.id)
        q = database.quote[0]  # a double quote, or MySQL's backtick
        assert [query.sql.split()[:3] for query in captured] == [["INSERT", "INTO", f"{q}book{q}"]] * 2  # books only
        assert by_instance.author_id == by_id.author_id == author.id
        assert await Author.select().aio_count() == 1


async def test_create_batch_runs_one_insert(database: Any) -> None:
    async with TransactionTestCase(database):
        async with assert_num_queries(database, 1):
            authors = await AuthorFactory.state("anonymous").create_batch(3)
        assert all(author.id is not None for author in authors)
        stored = {a.id: a.name for a in await Author.select().aio_execute()}
        assert stored == {a.id: a.name for a in authors}
        assert len(stored) == 3
        async with capture_queries(database) as captured:  # each book's author first, then the books in one
            books = await BookFactory.create_batch(2, title="Same")
        q = database.quote[0]
        assert [query.sql.split()[2] for query in captured] == [f"{q}author{q}", f"{q}author{q}", f"{q}book{q}"]
        assert [b.title for b in books] == ["Same", "Same"]
        assert len({b.author_id for b in books}) == 2
    assert await Author.select().aio_count() == 0


async def test_reset_sequences_restarts_past_what_outlives_the_tests(database: Any) -> None:
    outside = await AuthorFactory.create()  # like a row of a session fixture: no test block
    try:
        drawn = AuthorFactory._sequence
        for _ in range(2):  # two tests: the same numbers, past the row that outlives them
            async with TransactionTestCase(database, reset_sequences=True):
                names = [(await AuthorFactory.create()).name, (await AuthorFactory.create()).name]
                assert names == [f"Author {drawn + 1}", f"Author {drawn + 2}"]
        assert AuthorFactory._sequence == drawn
        async with TransactionTestCase(database):  # without reset_sequences: the factory's counter goes on
            assert (await AuthorFactory.create()).name == f"Author {drawn + 1}"
    finally:
        await Author.delete().where(Author.id == outside.id).aio_execute()
