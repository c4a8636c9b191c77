"""aio_clear_tables and clear_tables: both strategies, foreign keys, sequences, missing tables, bad input."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import peewee
import peewee_async
import pytest

from peewee_async_testing import aio_clear_tables, bound_models, clear_tables
from peewee_async_testing.cleanup import WriteTracker

from .helpers import is_sqlite
from .models import MODELS, Author, BaseModel, Book, Ghost, Review


async def fill() -> None:
    """Two authors, a book each, a review: rows in every table, linked by foreign keys."""
    for name in ("ada", "grace"):
        author = await Author.aio_create(name=name)
        book = await Book.aio_create(title=f"{name}'s book", author=author)
    await Review.aio_create(book=book, stars=5)


async def counts() -> list[int]:
    return [await model.select().aio_count() for model in MODELS]


@pytest.fixture
def statements(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """The SQL that peewee-async sends while the test runs."""
    caplog.set_level(logging.DEBUG, logger="peewee.async")
    sent: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            sent.append(record.msg[0] if isinstance(record.msg, tuple) else str(record.msg))

    handler = Collect()
    logging.getLogger("peewee.async").addHandler(handler)
    yield sent
    logging.getLogger("peewee.async").removeHandler(handler)


@pytest.mark.parametrize("strategy", ["truncate", "delete"])
async def test_every_bound_table_is_emptied_and_ids_restart(database: Any, strategy: str) -> None:
    await fill()
    assert await counts() == [2, 2, 1]
    await aio_clear_tables(database, strategy=strategy)  # type: ignore[arg-type]
    assert await counts() == [0, 0, 0]
    first = await Author.aio_create(name="again")
    assert first.id == 1, "the id sequence was not restarted"
    await Author.delete().aio_execute()


async def test_truncate_is_one_statement_for_all_tables(database: Any, statements: list[str]) -> None:
    if is_sqlite(database):
        pytest.skip("SQLite has no TRUNCATE")
    await fill()
    statements.clear()
    await aio_clear_tables(database)
    truncates = [sql for sql in statements if sql.startswith("TRUNCATE")]
    assert truncates == ['TRUNCATE "author", "book", "review" RESTART IDENTITY CASCADE']


async def test_delete_is_one_statement_on_postgres(database: Any, statements: list[str]) -> None:
    if is_sqlite(database):
        pytest.skip("SQLite deletes table by table")
    await fill()
    statements.clear()
    await aio_clear_tables(database, strategy="delete")
    assert len(statements) == 1
    assert statements[0].startswith("DO $pwat$")
    assert await counts() == [0, 0, 0]


async def test_delete_goes_children_first(database: Any, statements: list[str]) -> None:
    await fill()
    statements.clear()
    await aio_clear_tables(database, strategy="delete")
    deletes = " ".join(statements)
    assert (
        deletes.index('DELETE FROM "review"')
        < deletes.index('DELETE FROM "book"')
        < deletes.index('DELETE FROM "author"')
    )
    assert await counts() == [0, 0, 0]


async def test_only_the_given_models_are_cleared(database: Any) -> None:
    await fill()
    await aio_clear_tables(database, [Review], strategy="delete")
    assert await counts() == [2, 2, 0]
    await aio_clear_tables(database, [Author, Book, Review], strategy="delete")
    assert await counts() == [0, 0, 0]


@pytest.mark.parametrize("strategy", ["truncate", "delete"])
async def test_tables_that_do_not_exist_are_skipped(database: Any, strategy: str) -> None:
    assert not await database.aio_table_exists(Ghost)
    await fill()
    await aio_clear_tables(database, [Ghost, Author, Book, Review], strategy=strategy)  # type: ignore[arg-type]
    await aio_clear_tables(database, [Ghost], strategy=strategy)  # type: ignore[arg-type]
    assert await counts() == [0, 0, 0]


async def test_the_sync_version_clears_through_the_sync_connection(database: Any) -> None:
    await fill()
    allowed = database._allow_sync
    clear_tables(database, strategy="delete")
    assert await counts() == [0, 0, 0]
    assert database._allow_sync is allowed
    assert database.is_closed(), "clear_tables left the sync connection it opened"
    clear_tables(database)  # truncate (SQLite: delete)
    assert await counts() == [0, 0, 0]


async def test_sqlite_autoincrement_counters_are_reset(tmp_path: Path) -> None:
    db = peewee_async.SqliteDatabase(str(tmp_path / "autoincrement.db"))

    class Ticket(peewee_async.AioModel):  # type: ignore[misc]  # peewee-async ships no types: AioModel is Any
        id = peewee.AutoField()  # peewee's AutoField on SQLite: no AUTOINCREMENT, rowid reuse

        class Meta:
            database = db

    class Counter(peewee_async.AioModel):  # type: ignore[misc]  # peewee-async ships no types: AioModel is Any
        id = peewee.AutoField()

        class Meta:
            database = db

    await db.aio_execute_sql("CREATE TABLE counter (id INTEGER PRIMARY KEY AUTOINCREMENT)")
    await db.aio_create_tables([Ticket])
    for _ in range(3):
        await Counter.aio_create()
        await Ticket.aio_create()
    await aio_clear_tables(db, [Counter, Ticket])
    assert (await Counter.aio_create()).id == 1
    assert (await Ticket.aio_create()).id == 1
    await db.aio_close()


def test_models_bound_to_the_database_are_found_parents_first(database: Any) -> None:
    found = bound_models(database)
    assert {Author, Book, Review, Ghost, BaseModel} <= set(found)
    assert found.index(Author) < found.index(Book) < found.index(Review)
    assert all(model._meta.database.obj is database for model in found)


def test_an_unknown_strategy_names_the_valid_ones(database: Any) -> None:
    with pytest.raises(ValueError, match="use one of: truncate, delete"):
        clear_tables(database, strategy="drop")  # type: ignore[arg-type]


async def test_models_must_be_model_classes(database: Any) -> None:
    with pytest.raises(TypeError, match="takes peewee model classes"):
        await aio_clear_tables(database, ["author"])  # type: ignore[list-item]


async def test_the_write_tracker_sees_async_and_sync_writes(database: Any) -> None:
    with WriteTracker(database) as tracker:
        ada = await Author.aio_create(name="ada")
        with database.allow_sync():
            Book.create(title="notes", author=ada)
        assert await Review.select().aio_count() == 0  # a read is not a write
    assert tracker.written(MODELS) == [Author, Book]
    assert "aio_execute_sql" not in vars(database)
    assert "execute_sql" not in vars(database)
    await aio_clear_tables(database, tracker.written(MODELS), strategy="delete")
    assert await counts() == [0, 0, 0]


async def test_a_write_that_failed_is_not_a_write(database: Any) -> None:
    with WriteTracker(database) as tracker, pytest.raises(peewee.DatabaseError):
        await Ghost.aio_create(note="boo")  # its table does not exist
    assert tracker.written([*MODELS, Ghost]) == []


@pytest.mark.parametrize("sequences", [True, False])
async def test_the_tracker_empties_what_was_written_in_one_statement(
    database: Any, statements: list[str], sequences: bool
) -> None:
    ada = await Author.aio_create(name="ada")  # before the tracker: left alone
    with WriteTracker(database) as tracker:
        await Book.aio_create(title="notes", author=ada)
        await Review.aio_create(book=await Book.aio_create(title="more", author=ada), stars=1)
    statements.clear()
    await tracker.aio_clear(MODELS, sequences=sequences)
    if not is_sqlite(database):
        assert len(statements) == 1, statements
        assert statements[0].startswith('DELETE FROM "review"; DELETE FROM "book"')
    assert await counts() == [1, 0, 0]
    assert tracker.written(MODELS) == [], "what was cleared is forgotten"
    book = await Book.aio_create(title="again", author=ada)
    assert (book.id == 1) is sequences or is_sqlite(database)  # SQLite's plain AutoField reuses rowids
    await Book.delete().aio_execute()
    await Author.delete().aio_execute()


async def test_after_a_statement_it_cannot_read_the_tracker_checks_every_table(
    database: Any, statements: list[str]
) -> None:
    with WriteTracker(database) as tracker:
        await fill()
        await database.aio_execute_sql("SELECT 1 FROM author WHERE 1 = 0 UNION SELECT 1 FROM author WHERE 1 = 0")
        await database.aio_execute_sql("WITH numbers AS (SELECT 1 AS n) SELECT n FROM numbers")
    statements.clear()
    with WriteTracker(database) as nothing:
        pass
    await nothing.aio_clear([*MODELS, Ghost])
    assert statements == [], "a test that wrote nothing costs no statement"
    await tracker.aio_clear([*MODELS, Ghost])  # Ghost's table is missing: skipped
    assert await counts() == [0, 0, 0]
    if not is_sqlite(database):
        assert statements[0].startswith("DO $pwat$")


async def test_a_statement_the_tracker_cannot_read_counts_as_writing_everywhere(database: Any) -> None:
    with WriteTracker(database) as tracker:
        await database.aio_execute_sql("WITH numbers AS (SELECT 1 AS n) SELECT n FROM numbers")
    assert tracker.written(MODELS) == MODELS
