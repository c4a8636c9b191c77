"""assert_database_has, assert_database_missing and assert_database_count on every driver: passing and failing, the
near misses of their messages, the table-name form, inside and outside a test transaction, and bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import peewee
import pytest

from peewee_async_testing import (
    ConfigurationError,
    DatabaseArgumentError,
    TransactionTestCase,
    assert_database_count,
    assert_database_has,
    assert_database_missing,
    capture_queries,
)

from .models import MODELS, Author, Book, Review


@pytest.fixture
async def committed(database: Any) -> AsyncIterator[Any]:
    """The database, for a test that commits rows outside any test transaction: they are deleted after it."""
    yield database
    for model in reversed(MODELS):
        await model.delete().aio_execute()


async def shelf() -> tuple[Author, Author]:
    """Two authors, three books, four reviews."""
    ada, grace = await Author.aio_create(name="ada"), await Author.aio_create(name="grace")
    engines = await Book.aio_create(title="Engines", author=ada)
    notes = await Book.aio_create(title="Notes", author=ada)
    cobol = await Book.aio_create(title="COBOL", author=grace)
    for book, stars in ((engines, 5), (engines, 3), (notes, 4), (cobol, 2)):
        await Review.aio_create(book=book, stars=stars)
    return ada, grace


def rows_of(message: str) -> list[str]:
    """The rows a failure message shows, in its order."""
    return [line.strip() for line in message.splitlines() if line.startswith("  ")]


async def test_the_assertions_pass_on_matching_rows(database: Any) -> None:
    async with TransactionTestCase(database):
        ada, _ = await shelf()
        await assert_database_has(Author, name="ada")
        await assert_database_has(Book, title="Notes", author=ada)  # a foreign key by its instance...
        await assert_database_has(Book, title="Notes", author_id=ada.id)  # ... or by its id
        await assert_database_has(Review, Review.stars >= 4, Review.stars < 5)
        await assert_database_has(Review)
        await assert_database_missing(Author, name="linus")
        await assert_database_missing(Review, Review.stars > 5)
        await assert_database_missing(Book, title="COBOL", author=ada)
        await assert_database_count(Book, 2, author=ada)
        await assert_database_count(Review, 3, Review.stars > 2)
        await assert_database_count(Author, 0, name=None)
        await assert_database_count(Author, 2)
        await assert_database_has(Author, database=database, name="grace")  # the model's own database, given


async def test_has_fails_with_what_was_searched_and_the_closest_rows_first(database: Any) -> None:
    async with TransactionTestCase(database):
        ada = await Author.aio_create(name="ada")
        engines, notes, cobol = [
            await Book.aio_create(title=title, author=ada) for title in ("Engines", "Notes", "COBOL")
        ]
        # Inserted in an order unlike their closeness to book=engines, stars=4, stars > 3: the ids do not rank them.
        for book, stars in ((cobol, 2), (notes, 5), (engines, 3), (notes, 4), (engines, 5)):
            await Review.aio_create(book=book, stars=stars)
        with pytest.raises(AssertionError) as failure:
            await assert_database_has(Review, Review.stars > 3, book=engines, stars=4)
    message, q = str(failure.value), database.quote[0]  # a double quote, or MySQL's backtick
    assert message.splitlines()[:2] == [
        f"Expected at least one row of Review where book == {engines!r} and stars == 4 and {q}stars{q} > 3, found 0.",
        "The table has 5 rows; closest first:",
    ]
    # Most where columns equal first, then most expressions true, then by id.
    shown = rows_of(message)
    assert [row.split(", ")[:2] for row in shown] == [
        [f"book={notes.id}", "stars=4"],
        [f"book={engines.id}", "stars=5"],
        [f"book={engines.id}", "stars=3"],
        [f"book={notes.id}", "stars=5"],
        [f"book={cobol.id}", "stars=2"],
    ]
    assert shown[0].endswith(f"(not met: book == {engines!r})")
    assert shown[1].endswith("(not met: stars == 4)")
    assert shown[2].endswith(f"(not met: stars == 4; {q}stars{q} > 3)")
    assert shown[3].endswith(f"(not met: book == {engines!r}; stars == 4)")
    assert shown[4].endswith(f"(not met: book == {engines!r}; stars == 4; {q}stars{q} > 3)")


async def test_missing_fails_showing_the_rows_that_match(database: Any) -> None:
    async with TransactionTestCase(database):
        ada, _ = await shelf()
        with pytest.raises(AssertionError) as failure:
            await assert_database_missing(Book, author=ada)
    message = str(failure.value)
    assert message.splitlines()[0] == f"Expected no row of Book where author == {ada!r}, found 2."
    shown = rows_of(message)
    assert [row.split(", ")[:3] for row in shown[:2]] == [
        [f"author={ada.id}", f"id={shown[0].split('id=')[1].split(',')[0]}", "title='Engines'"],
        [f"author={ada.id}", f"id={shown[1].split('id=')[1].split(',')[0]}", "title='Notes'"],
    ]
    assert "not met" not in shown[0] + shown[1]
    assert shown[2].endswith(f"(not met: author == {ada!r})")


async def test_count_fails_with_expected_and_found(database: Any) -> None:
    async with TransactionTestCase(database):
        await shelf()
        q = database.quote[0]  # a double quote, or MySQL's backtick
        with pytest.raises(AssertionError, match=rf"^Expected 1 row of Review where {q}stars{q} > 2, found 3\.\n"):
            await assert_database_count(Review, 1, Review.stars > 2)
        with pytest.raises(AssertionError, match=r"^Expected 3 rows of Author, found 2\.\nThe table has 2 rows; all"):
            await assert_database_count(Author, 3)


async def test_at_most_five_rows_are_shown(database: Any) -> None:
    async with TransactionTestCase(database):
        for number in range(8):
            await Author.aio_create(name=f"author {number}")
        with pytest.raises(AssertionError) as failure:
            await assert_database_has(Author, name="ada")
        with pytest.raises(AssertionError) as unconditioned:
            await assert_database_count(Author, 0)
    assert "The table has 8 rows; the 5 closest:" in str(failure.value)
    assert len(rows_of(str(failure.value))) == 5
    assert "The table has 8 rows; the first 5:" in str(unconditioned.value)
    assert [row.split(", ")[1] for row in rows_of(str(unconditioned.value))] == [
        f"name='author {number}'" for number in range(5)
    ]


async def test_the_assertions_ask_the_database_for_five_rows_at_most(database: Any) -> None:
    async with TransactionTestCase(database):
        await shelf()
        async with capture_queries(database) as captured:
            await assert_database_has(Review, stars=5)
        assert [query.sql.split(" FROM")[0] for query in captured] == ["SELECT COUNT(*)"]
        async with capture_queries(database) as captured:
            with pytest.raises(AssertionError):
                await assert_database_has(Review, stars=1)
    statements = [query.sql for query in captured]
    closest = [sql for sql in statements if "ORDER BY" in sql]
    assert len(statements) == 3
    assert len(closest) == 1
    assert closest[0].endswith(("LIMIT %s", "LIMIT ?"))


async def test_an_empty_table_is_said_to_be_empty(database: Any) -> None:
    with pytest.raises(AssertionError) as failure:
        await assert_database_has(Author, name="ada")
    assert (
        str(failure.value) == "Expected at least one row of Author where name == 'ada', found 0.\nThe table is empty."
    )


async def test_long_values_are_cut(database: Any) -> None:
    async with TransactionTestCase(database):
        await Author.aio_create(name="x" * 200)
        with pytest.raises(AssertionError) as failure:
            await assert_database_has(Author, name="y" * 200)
    message = str(failure.value)
    assert len(message) < 400  # not the 600 characters of the three values
    assert f"name='{'x' * 56}..." in message
    assert f"name == '{'y' * 56}..." in message


async def test_a_table_by_its_name(database: Any) -> None:
    book = peewee.Table("book")  # its columns, for expressions
    async with TransactionTestCase(database):
        ada, grace = await shelf()
        engines = await Book.aio_get(Book.title == "Engines")
        await assert_database_has("book", database=database, title="Notes", author_id=ada.id)
        await assert_database_count(
            "review", 2, peewee.Table("review").c.stars > 2, database=database, book_id=engines.id
        )
        await assert_database_missing("review", peewee.Table("review").c.stars > 5, database=database)
        with pytest.raises(AssertionError) as failure:
            await assert_database_has(
                "book", book.c.title != "COBOL", database=database, title="Notes", author_id=grace.id
            )
    message, q = str(failure.value), database.quote[0]
    assert message.splitlines()[0] == (
        f"Expected at least one row of table 'book' where title == 'Notes' and author_id == {grace.id} and "
        f"{q}title{q} != 'COBOL', found 0."
    )
    assert [row.split(", ")[:2] for row in rows_of(message)] == [
        ["title='Notes'", f"author_id={ada.id}"],
        ["title='COBOL'", f"author_id={grace.id}"],
        ["title='Engines'", f"author_id={ada.id}"],
    ]
    assert rows_of(message)[0].endswith(f"(not met: author_id == {grace.id})")


async def test_a_table_name_needs_the_database(database: Any) -> None:
    with pytest.raises(
        TypeError, match=r"table name 'author' needs the database that holds it: pass it as `database=`"
    ):
        await assert_database_has("author", name="ada")


async def test_uncommitted_rows_of_the_test_transaction_are_seen(database: Any) -> None:
    async with TransactionTestCase(database):
        await Author.aio_create(name="ada")
        await assert_database_has(Author, name="ada")
        await assert_database_has("author", database=database, name="ada")
    await assert_database_missing(Author, name="ada")  # rolled back


async def test_committed_rows_are_seen_without_a_test_transaction(committed: Any) -> None:
    await Author.aio_create(name="ada")
    await assert_database_has(Author, name="ada")
    await assert_database_count("author", 1, database=committed)
    with pytest.raises(AssertionError, match=r"found 1\."):
        await assert_database_missing(Author, name="ada")


async def test_an_unknown_field_names_the_models_fields(database: Any) -> None:
    with pytest.raises(TypeError, match=r"^Book has no field 'titel', 'writer'; its fields are: id, title, author\."):
        await assert_database_has(Book, titel="Notes", writer=1)


async def test_a_model_without_a_database_is_refused(database: Any) -> None:
    class Loose(peewee.Model):
        name = peewee.CharField()

    with pytest.raises(ConfigurationError, match=r"^Loose is bound to no database: .*pass the database"):
        await assert_database_has(Loose, name="ada")


async def test_the_database_argument_is_checked(database: Any) -> None:
    with pytest.raises(DatabaseArgumentError, match=r"A row assertion needs a peewee-async database"):
        await assert_database_has("author", database=peewee.SqliteDatabase(":memory:"))


async def test_a_condition_that_is_no_expression_is_refused(database: Any) -> None:
    with pytest.raises(TypeError, match=r"are peewee expressions, such as `User.age > 3`, and one is True \(a bool\)"):
        await assert_database_has(Author, "ada" == "ada")


@pytest.mark.parametrize("target", [Author(name="ada"), Author._meta.table, None])
async def test_what_is_searched_must_be_a_model_or_a_table_name(database: Any, target: Any) -> None:
    with pytest.raises(TypeError, match=r"searches a peewee model class or a table name \(str\), and was given"):
        await assert_database_has(target)


@pytest.mark.parametrize("n", [-1, True, 2.0, "2"])
async def test_the_expected_count_must_be_a_natural_number(database: Any, n: Any) -> None:
    with pytest.raises(TypeError, match=r"needs the expected number of rows, an int >= 0, and got"):
        await assert_database_count(Author, n)
