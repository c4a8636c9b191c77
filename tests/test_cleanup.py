"""aio_clear_tables and clear_tables: both strategies, foreign keys, sequences, missing tables, bad input, and the
guards: models of another database, and databases that are not test databases, refused before any statement."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import peewee
import peewee_async
import psycopg2
import pytest
from peewee_async.databases import fetchall

from peewee_async_testing import ConfigurationError, PostgresServer, aio_clear_tables, bound_models, clear_tables
from peewee_async_testing.cleanup import STRATEGIES
from peewee_async_testing.writes import WriteTracker

from .helpers import admin, is_mysql, is_sqlite, mysql_admin, names
from .models import MODELS, Author, BaseModel, Book, Ghost, Review
from .production import ROLE, Production


async def fill() -> None:
    """Two authors, a book each, a review: rows in every table, linked by foreign keys."""
    for name in ("ada", "grace"):
        author = await Author.aio_create(name=name)
        book = await Book.aio_create(title=f"{name}'s book", author=author)
    await Review.aio_create(book=book, stars=5)


async def counts() -> list[int]:
    return [await model.select().aio_count() for model in MODELS]


def quoted(database: Any, table: str) -> str:
    """``table`` quoted as ``database`` quotes names: ``"book"``, or ```book``` on MySQL."""
    quote = database.quote[0]
    return f"{quote}{table}{quote}"


#: On MySQL, what every clear's statements start and end with: foreign key checks off, and back as they were.
MYSQL_OFF = "SET @pwat_fk_checks = @@SESSION.foreign_key_checks, SESSION foreign_key_checks = 0"
MYSQL_BACK = "SET SESSION foreign_key_checks = IFNULL(@pwat_fk_checks, @@SESSION.foreign_key_checks)"


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
    if is_mysql(database):  # which tables exist, then one string: TRUNCATE TABLE takes one table
        each = "; ".join(f"TRUNCATE TABLE `{table}`" for table in ("review", "book", "author"))
        assert statements[1:] == [f"{MYSQL_OFF}; {each}; {MYSQL_BACK}"]
    else:
        truncates = [sql for sql in statements if sql.startswith("TRUNCATE")]
        assert truncates == ['TRUNCATE "author", "book", "review" RESTART IDENTITY CASCADE']
    assert await counts() == [0, 0, 0]


async def test_delete_is_one_statement_on_postgres(database: Any, statements: list[str]) -> None:
    if is_sqlite(database):
        pytest.skip("SQLite deletes table by table")
    await fill()
    statements.clear()
    await aio_clear_tables(database, strategy="delete")
    if is_mysql(database):  # which tables exist (one round trip), then one string
        assert len(statements) == 2
        assert statements[1].startswith(MYSQL_OFF + "; DELETE FROM `review`; ")
        assert "ALTER TABLE `author` AUTO_INCREMENT = 1" in statements[1]
        assert statements[1].endswith(MYSQL_BACK)
    else:
        assert len(statements) == 1
        assert statements[0].startswith("DO $pwat$")
    assert await counts() == [0, 0, 0]


async def test_delete_goes_children_first(database: Any, statements: list[str]) -> None:
    await fill()
    statements.clear()
    await aio_clear_tables(database, strategy="delete")
    deletes = " ".join(statements)
    assert (
        deletes.index(f"DELETE FROM {quoted(database, 'review')}")
        < deletes.index(f"DELETE FROM {quoted(database, 'book')}")
        < deletes.index(f"DELETE FROM {quoted(database, 'author')}")
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
    async with WriteTracker(database) as tracker:
        await Book.aio_create(title="notes", author=ada)
        await Review.aio_create(book=await Book.aio_create(title="more", author=ada), stars=1)
    statements.clear()
    await tracker.aio_clear(MODELS, sequences=sequences)
    if is_mysql(database):  # what the tables written set off (triggers, cascades), then one string
        assert len(statements) == 2, statements
        assert statements[1].startswith(f"{MYSQL_OFF}; DELETE FROM `review`; DELETE FROM `book`; ")
        assert "`author`" not in statements[1]
    elif not is_sqlite(database):
        assert len(statements) == 1, statements
        assert 'DELETE FROM "review"' in statements[0]
        assert not statements[0].startswith("DO"), "plain statements, not a DO block: half the time"
    assert await counts() == [1, 0, 0]
    assert tracker.written(MODELS) == [], "what was cleared is forgotten"
    book = await Book.aio_create(title="again", author=ada)
    assert (book.id == 1) is sequences or is_sqlite(database)  # SQLite's plain AutoField reuses rowids
    await Book.delete().aio_execute()
    await Author.delete().aio_execute()


async def test_after_a_statement_it_cannot_read_the_tracker_checks_every_table(
    database: Any, statements: list[str]
) -> None:
    async with WriteTracker(database) as tracker:
        await fill()
        await database.aio_execute_sql("SELECT 1 FROM author WHERE 1 = 0 UNION SELECT 1 FROM author WHERE 1 = 0")
        await database.aio_execute_sql("WITH numbers AS (SELECT 1 AS n) SELECT n FROM numbers")
    async with WriteTracker(database) as nothing:
        pass
    statements.clear()
    await nothing.aio_clear([*MODELS, Ghost])
    # on SQLite and MySQL, no statement for a test that wrote nothing; on PostgreSQL, the one that finds what
    # others wrote
    assert len(statements) == (0 if is_sqlite(database) or is_mysql(database) else 1)
    assert await counts() == [2, 2, 1]
    statements.clear()
    await tracker.aio_clear([*MODELS, Ghost])  # Ghost's table is missing: skipped
    if is_mysql(database):  # which tables exist, then every one of them emptied in one string
        assert len(statements) == 2
        assert "TRIGGERS" not in statements[0], "after a statement it could not read, nothing more to ask"
        assert "`ghost`" not in statements[1]
    elif not is_sqlite(database):
        assert len(statements) == 1
        assert statements[0].startswith("DO $pwat$")
        assert "xmin" not in statements[0], "after a statement it could not read, every table is emptied"
    assert await counts() == [0, 0, 0]


async def test_a_statement_the_tracker_cannot_read_counts_as_writing_everywhere(database: Any) -> None:
    with WriteTracker(database) as tracker:
        await database.aio_execute_sql("WITH numbers AS (SELECT 1 AS n) SELECT n FROM numbers")
    assert tracker.written(MODELS) == MODELS


# -- what the tracker finds: every write, whatever made it ---------------------------------------------------------

#: On PostgreSQL: a function and a procedure that add a book, and a trigger that reviews every new book.
PG_OBJECTS = [
    "CREATE FUNCTION add_book(author integer) RETURNS integer LANGUAGE sql"
    " AS $$ INSERT INTO book (title, author_id) VALUES ('by a function', author) RETURNING id $$",
    "CREATE PROCEDURE add_book_proc(author integer) LANGUAGE sql"
    " AS $$ INSERT INTO book (title, author_id) VALUES ('by a procedure', author) $$",
    "CREATE FUNCTION review_new_book() RETURNS trigger LANGUAGE plpgsql"
    " AS $$ BEGIN INSERT INTO review (book_id, stars) VALUES (NEW.id, 3); RETURN NEW; END $$",
    "CREATE TRIGGER review_new_book AFTER INSERT ON book FOR EACH ROW EXECUTE FUNCTION review_new_book()",
]
PG_DROPS = [
    "DROP TRIGGER review_new_book ON book",
    "DROP FUNCTION review_new_book()",
    "DROP PROCEDURE add_book_proc(integer)",
    "DROP FUNCTION add_book(integer)",
]
SQLITE_OBJECTS = [
    "CREATE TRIGGER review_new_book AFTER INSERT ON book"
    " BEGIN INSERT INTO review (book_id, stars) VALUES (NEW.id, 3); END"
]

MYSQL_OBJECTS = [
    "CREATE FUNCTION add_book(author INT) RETURNS INT MODIFIES SQL DATA"
    " BEGIN INSERT INTO book (title, author_id) VALUES ('by a function', author); RETURN LAST_INSERT_ID(); END",
    "CREATE PROCEDURE add_book_proc(author INT) INSERT INTO book (title, author_id) VALUES ('by a procedure', author)",
    "CREATE TRIGGER review_new_book AFTER INSERT ON book FOR EACH ROW"
    " INSERT INTO review (book_id, stars) VALUES (NEW.id, 3)",
]
MYSQL_DROPS = ["DROP TRIGGER review_new_book", "DROP PROCEDURE add_book_proc", "DROP FUNCTION add_book"]


def engine(database: Any) -> str:
    return "sqlite" if is_sqlite(database) else "mysql" if is_mysql(database) else "postgres"


@pytest.fixture
async def seeded(database: Any) -> AsyncIterator[dict[str, Any]]:
    """A seed author and book, written before the tracker starts; then the functions and the trigger above."""
    author = await Author.aio_create(name="seed")
    book = await Book.aio_create(title="seed", author=author)
    objects, drops = {
        "sqlite": (SQLITE_OBJECTS, ["DROP TRIGGER review_new_book"]),
        "mysql": (MYSQL_OBJECTS, MYSQL_DROPS),
        "postgres": (PG_OBJECTS, PG_DROPS),
    }[engine(database)]
    for sql in objects:
        await database.aio_execute_sql(sql)
    try:
        yield {"author": author.id, "book": book.id, "database": database.database}
    finally:
        for sql in drops:
            await database.aio_execute_sql(sql)
        for model in reversed(MODELS):
            await model.delete().aio_execute()


async def raw_pool_cursor(database: Any, sql: str) -> None:
    """Run ``sql`` on a cursor of a connection taken from the database's pool: not through the database object."""
    async with database.aio_connection() as connection:
        if is_sqlite(database):
            await connection.execute(sql)
            return
        async with connection.cursor() as cursor:
            await cursor.execute(sql)


async def raw_sync_cursor(database: Any, sql: str) -> None:
    """Run ``sql`` on a cursor of peewee's synchronous connection (``database.cursor()``)."""
    with database.allow_sync():
        database.cursor().execute(sql)


async def through_database(database: Any, sql: str) -> None:
    await database.aio_execute_sql(sql)


@dataclass
class Write:
    """A way a test writes: ``sql`` sent by ``send``; the tables it leaves rows in or writes to (``written``);
    ``precise``: whether the tracker should leave the seed rows of the other tables alone."""

    sql: str
    written: tuple[Any, ...]
    precise: bool = True
    send: Callable[[Any, str], Awaitable[None]] = through_database
    engines: tuple[str, ...] = ("postgres", "sqlite", "mysql")
    undo: str = ""


BOOK = "INSERT INTO book (title, author_id) VALUES ('new', {author})"
WRITES = {
    "a trigger fills another table": Write(BOOK, (Book, Review)),
    "a raw cursor of a pool connection": Write(
        "INSERT INTO review (book_id, stars) VALUES ({book}, 1)", (Review,), send=raw_pool_cursor
    ),
    "a raw cursor of the sync connection": Write("UPDATE book SET title = 'raw'", (Book,), send=raw_sync_cursor),
    "a function called by a SELECT": Write("SELECT add_book({author})", (Book, Review), engines=("postgres",)),
    "EXPLAIN ANALYZE": Write(
        "EXPLAIN ANALYZE INSERT INTO review (book_id, stars) VALUES ({book}, 2)", (Review,), engines=("postgres",)
    ),
    "UPDATE ONLY": Write("UPDATE ONLY book SET title = 'only'", (Book,), engines=("postgres",)),
    "DELETE FROM ONLY": Write("DELETE FROM ONLY book WHERE id = -1", (Book,), engines=("postgres",)),
    "UPDATE OR IGNORE": Write("UPDATE OR IGNORE book SET title = 'or'", (Book,), engines=("sqlite",)),
    "INSERT OR REPLACE": Write(
        "INSERT OR REPLACE INTO review (id, book_id, stars) VALUES (1000, {book}, 1)", (Review,), engines=("sqlite",)
    ),
    "INSERT ... ON CONFLICT": Write(
        "INSERT INTO review (id, book_id, stars) VALUES (1000, {book}, 1) ON CONFLICT (id) DO UPDATE SET stars = 2",
        (Review,),
        engines=("postgres", "sqlite"),
    ),
    "WITH ... INSERT": Write(
        "WITH made AS (INSERT INTO book (title, author_id) VALUES ('with', {author}) RETURNING id) SELECT id FROM made",
        (Book, Review),
        precise=False,
        engines=("postgres",),
    ),
    "WITH ... INSERT on SQLite": Write(
        "WITH made AS (SELECT 'with' AS title) INSERT INTO book (title, author_id) SELECT title, {author} FROM made",
        (Book, Review),
        precise=False,
        engines=("sqlite",),
    ),
    "COPY ... FROM": Write(
        "COPY book (title, author_id) FROM PROGRAM 'echo copied,{author}' WITH (FORMAT csv)",
        (Book, Review),
        precise=False,
        engines=("postgres",),
    ),
    "MERGE": Write(
        "MERGE INTO book USING (VALUES ({author})) AS new (author) ON false"
        " WHEN NOT MATCHED THEN INSERT (title, author_id) VALUES ('merged', new.author)",
        (Book, Review),
        precise=False,
        engines=("postgres",),
    ),
    "several statements in one string": Write(
        "SELECT 1; DELETE FROM book WHERE id = -1", (Book,), precise=False, engines=("postgres", "mysql")
    ),
    "CALL": Write("CALL add_book_proc({author})", (Book, Review), precise=False, engines=("postgres", "mysql")),
    "DO": Write(
        "DO $$ BEGIN INSERT INTO book (title, author_id) VALUES ('done', {author}); END $$",
        (Book, Review),
        precise=False,
        engines=("postgres",),
    ),
    "leading comments": Write("/* audit */ -- why\nDELETE FROM book WHERE id = -1", (Book,)),
    "SELECT ... FOR UPDATE (no write)": Write("SELECT id FROM book FOR UPDATE", (), engines=("postgres", "mysql")),
    "TRUNCATE": Write("TRUNCATE review", (Review,), precise=False, engines=("postgres", "mysql")),
    "DDL": Write(
        "CREATE INDEX scratch ON book (title)",
        (Book,),
        precise=False,
        undo="DROP INDEX scratch",
        engines=("postgres", "sqlite"),
    ),
    # MySQL's own: backticks, its writes and their modifiers, multi-table forms, what calls a stored function
    "DDL on MySQL": Write(
        "CREATE INDEX scratch ON book (title)",
        (Book,),
        precise=False,
        undo="DROP INDEX scratch ON book",
        engines=("mysql",),
    ),
    "a function called by a SELECT on MySQL": Write(
        "SELECT add_book({author})", (Book, Review), precise=False, engines=("mysql",)
    ),
    "a function called by a SET on MySQL": Write(
        "SET @made = add_book({author})", (Book, Review), precise=False, engines=("mysql",)
    ),
    "DO on MySQL": Write("DO add_book({author})", (Book, Review), precise=False, engines=("mysql",)),
    "DESCRIBE (no write)": Write("DESCRIBE book", (), engines=("mysql",)),
    "backticks": Write("UPDATE `book` SET title = 'ticked'", (Book,), engines=("mysql",)),
    "backticks with the database": Write(
        "UPDATE `{database}`.`book` SET title = 'ticked'", (Book,), engines=("mysql",)
    ),
    "REPLACE INTO": Write(
        "REPLACE INTO review (id, book_id, stars) VALUES (1000, {book}, 1)", (Review,), engines=("mysql",)
    ),
    "INSERT IGNORE without INTO": Write(
        "INSERT IGNORE review (book_id, stars) VALUES ({book}, 1)", (Review,), engines=("mysql",)
    ),
    "INSERT ... ON DUPLICATE KEY UPDATE": Write(
        "INSERT INTO review (id, book_id, stars) VALUES (1000, {book}, 1) ON DUPLICATE KEY UPDATE stars = 2",
        (Review,),
        engines=("mysql",),
    ),
    "UPDATE LOW_PRIORITY IGNORE": Write(
        "UPDATE LOW_PRIORITY IGNORE book SET title = 'low'", (Book,), engines=("mysql",)
    ),
    "multi-table UPDATE": Write(
        "UPDATE author JOIN `book` AS b ON b.author_id = author.id SET b.title = 'joined' WHERE author.id = -1",
        (Author, Book),
        engines=("mysql",),
    ),
    "multi-table DELETE ... USING": Write(
        "DELETE FROM review USING review JOIN book ON book.id = review.book_id WHERE book.id = -1",
        (Review,),
        engines=("mysql",),
    ),
    "multi-table DELETE of aliases": Write(
        "DELETE r FROM review AS r JOIN book AS b ON b.id = r.book_id WHERE b.id = -1",
        (Book, Review),
        engines=("mysql",),
    ),
}


@pytest.fixture
def kept_sync(database: Any) -> Iterator[None]:
    """peewee's synchronous connection kept open, as the ``clear_tables`` fixture keeps it: there the sync clear
    prepares its statements once and then only executes them."""
    database.connect(reuse_if_open=True)
    yield
    database.close()


async def sync_clear(tracker: WriteTracker, models: list[Any]) -> None:
    """``tracker.clear`` on the kept sync connection, once it has prepared its statements (a clear that found
    nothing prepared them), as from the second test of a session on."""
    warm = WriteTracker(tracker.database)
    warm.mark(models, known={})
    with warm:
        pass
    warm.clear(models)
    tracker.clear(models)


async def async_clear(tracker: WriteTracker, models: list[Any]) -> None:
    await tracker.aio_clear(models)


CLEARS_OF_A_TRACKER: dict[str, Callable[[WriteTracker, list[Any]], Awaitable[None]]] = {
    "aio_clear": async_clear,
    "clear on the kept sync connection": sync_clear,
}


@pytest.mark.parametrize("entered", ["async with", "with"])
@pytest.mark.parametrize("write", WRITES)
@pytest.mark.parametrize("clear", CLEARS_OF_A_TRACKER)
async def test_the_tracker_empties_every_table_written_whatever_wrote_it(
    database: Any, seeded: dict[str, Any], write: str, entered: str, clear: str, request: pytest.FixtureRequest
) -> None:
    case = WRITES[write]
    if engine(database) not in case.engines:
        pytest.skip(f"{write}: not on this engine")
    if clear != "aio_clear":
        request.getfixturevalue("kept_sync")
    seeds = {model: await model.select().aio_count() for model in MODELS}
    tracker = WriteTracker(database)
    if entered == "async with":
        async with tracker:
            await case.send(database, case.sql.format(**seeded))
    else:  # entered without a round trip: on PostgreSQL every table counts as written
        with tracker:
            await case.send(database, case.sql.format(**seeded))
    await CLEARS_OF_A_TRACKER[clear](tracker, [*MODELS, Ghost])
    if case.undo:
        await database.aio_execute_sql(case.undo)
    left = {model.__name__: await model.select().aio_count() for model in case.written}
    assert not any(left.values()), f"{write}: rows left behind in {left}"
    if case.precise and (entered == "async with" or engine(database) != "postgres"):
        kept = {model: await model.select().aio_count() for model in MODELS if model not in case.written}
        assert kept == {model: seeds[model] for model in kept}, f"{write}: the seed rows of an untouched table went"


@pytest.mark.parametrize("known", ["asked at the mark", "known from an earlier mark"])
@pytest.mark.parametrize("change", ["created and filled", "dropped"])
async def test_a_table_made_or_dropped_behind_the_trackers_back_is_still_handled(
    database: Any, statements: list[str], change: str, known: str
) -> None:
    """The plain statements count on the tables that existed at the mark (or at an earlier one, whose
    ``known`` the tracker shares); when one appeared (and holds rows) or went, the clear falls back to the
    DO block that checks each table, and forgets what it knew. On MySQL, the tracker sees the raw cursor's
    DDL, and then every table counts as written."""
    ghost = f"CREATE TABLE ghost (id {'INTEGER' if is_sqlite(database) else 'serial'} PRIMARY KEY, note TEXT)"
    if change == "dropped":
        await database.aio_execute_sql(ghost)
    author = await Author.aio_create(name="seed")
    kinds: dict[str, str] | None = None
    if known == "known from an earlier mark":
        kinds = {}
        await WriteTracker(database).aio_mark([*MODELS, Ghost], known=kinds)
    try:
        tracker = WriteTracker(database)
        statements.clear()
        await tracker.aio_mark([*MODELS, Ghost], known=kinds)
        if kinds and not is_sqlite(database):
            assert statements == ["SELECT txid_current_snapshot()::text"], "what was known was asked again"
        with tracker:
            if change == "dropped":
                await raw_pool_cursor(database, "DROP TABLE ghost")
                await raw_pool_cursor(database, f"INSERT INTO book (title, author_id) VALUES ('b', {author.id})")
            else:
                await raw_pool_cursor(database, ghost)
                await raw_pool_cursor(database, "INSERT INTO ghost (note) VALUES ('boo')")
        statements.clear()
        await tracker.aio_clear([*MODELS, Ghost])
        sent = list(statements)
        if change == "created and filled":
            assert await Ghost.select().aio_count() == 0, "the rows of a table that appeared were left"
        assert await counts() == [0 if is_mysql(database) else 1, 0, 0]
        if is_mysql(database):
            assert len(sent) == 2  # which tables exist, then one string
        elif not is_sqlite(database):  # the plain statements failed, emptying nothing: then the DO block
            assert len(sent) == 2
            assert sent[1].startswith("DO $pwat$")
            assert not kinds, "what it knew of the tables is forgotten"
    finally:
        if await database.aio_table_exists("ghost"):  # (MySQL warns of IF EXISTS on a missing one)
            await database.aio_execute_sql("DROP TABLE ghost")
        await Book.delete().aio_execute()
        await Author.delete().aio_execute()


@pytest.fixture
def sync_statements(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """The SQL that peewee's synchronous connection sends while the test runs."""
    caplog.set_level(logging.DEBUG, logger="peewee")
    sent: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if isinstance(record.msg, tuple):
                sent.append(record.msg[0])

    handler = Collect()
    logging.getLogger("peewee").addHandler(handler)
    yield sent
    logging.getLogger("peewee").removeHandler(handler)


async def test_the_sync_clear_prepares_its_statements_once_and_survives_what_undoes_them(
    database: Any, kept_sync: None, sync_statements: list[str]
) -> None:
    """On a kept connection the clear's statements are prepared once, then only executed (one round trip);
    a DEALLOCATE, a changed table, or a fresh connection since costs a round trip or two more, and empties
    no fewer tables."""
    if is_sqlite(database) or is_mysql(database):
        pytest.skip("PostgreSQL's prepared statements")
    author = await Author.aio_create(name="seed")
    known: dict[str, str] = {}

    def round(sql: str) -> list[str]:
        tracker = WriteTracker(database)
        tracker.mark(MODELS, known=known)
        with tracker:
            database.cursor().execute(sql)  # a raw cursor: only the server knows what it wrote
        sync_statements.clear()
        tracker.clear(MODELS)
        assert tracker.carried is not None, "the clear carried no mark for the next tracker"
        return [
            "PREPARE" if "PREPARE pwat_" in sql else "EXECUTE" if "EXECUTE pwat_" in sql else sql.split(" ")[0]
            for sql in sync_statements
        ]

    book = f"INSERT INTO book (title, author_id) VALUES ('b', {author.id})"
    with database.allow_sync():
        assert round(book) == ["EXECUTE", "SELECT", "PREPARE"], "the first clear did not prepare its statements"
        assert Book.select().count() == 0
        assert round(book) == ["EXECUTE"], "the second clear did more than execute the prepared statements"
        assert Book.select().count() == 0
        assert round("DEALLOCATE ALL; " + book) == ["EXECUTE", "SELECT", "PREPARE"]
        assert Book.select().count() == 0
        assert round("ALTER TABLE book ADD COLUMN extra integer; " + book) == ["EXECUTE"]  # re-planned
        assert Book.select().count() == 0
        assert round("ALTER TABLE book DROP COLUMN extra; " + book) == ["EXECUTE"]
        assert Book.select().count() == 0
        database.close()
        database.connect()
        assert round(book) == ["EXECUTE", "SELECT", "PREPARE"], "a fresh connection did not prepare them"
        assert [await model.select().aio_count() for model in MODELS] == [1, 0, 0]
    await Author.delete().aio_execute()


async def test_a_model_on_a_view_is_left_alone(database: Any) -> None:
    """Only tables are emptied: a model whose "table" is a view fails no clear."""
    await database.aio_execute_sql("CREATE VIEW book_titles AS SELECT title FROM book")
    try:
        titles = model(database, "book_titles")
        book = await Book.aio_create(title="seed", author=await Author.aio_create(name="seed"))
        async with WriteTracker(database) as tracker:
            await raw_pool_cursor(database, f"INSERT INTO review (book_id, stars) VALUES ({book.id}, 1)")
        await tracker.aio_clear([*MODELS, titles])
        assert await counts() == [1, 1, 0]
        tracker.everything = True  # as after a statement it could not read: the DO block, every table
        await tracker.aio_clear([*MODELS, titles])
        assert await counts() == [0, 0, 0]
    finally:
        await database.aio_execute_sql("DROP VIEW book_titles")


@pytest.mark.parametrize("clear", CLEARS_OF_A_TRACKER)
async def test_rows_of_a_transaction_running_at_the_mark_are_found(
    database: Any, pg_server: PostgresServer, pg_database: str, clear: str, request: pytest.FixtureRequest
) -> None:
    if is_sqlite(database) or is_mysql(database):
        pytest.skip("PostgreSQL's transaction ids: on SQLite and MySQL, another connection's writes are not seen")
    if clear != "aio_clear":
        request.getfixturevalue("kept_sync")
    author = await Author.aio_create(name="seed")
    other = psycopg2.connect(**pg_server.connect_params(pg_database))  # a transaction, begun before the mark
    try:
        with other.cursor() as cursor:
            cursor.execute("INSERT INTO book (title, author_id) VALUES ('early', %s)", (author.id,))
            await Author.aio_create(name="after")  # a later transaction ends first: the early one is still running
            async with WriteTracker(database) as tracker:
                cursor.execute("INSERT INTO book (title, author_id) VALUES ('late', %s)", (author.id,))
                other.commit()
        assert tracker.since is not None
        assert tracker.since[1], "no transaction was running at the mark"
        await CLEARS_OF_A_TRACKER[clear](tracker, MODELS)
    finally:
        other.close()
    assert await counts() == [2, 0, 0], "the rows of a transaction that was running at the mark were left"
    await Author.delete().aio_execute()


# -- the guards ---------------------------------------------------------------------------------------------------


async def clear(how: str, database: Any, models: list[Any] | None = None, **options: Any) -> None:
    """Empty the tables of ``models`` the way ``how`` names: each entry point that sends destructive statements."""
    if how == "aio_clear_tables":
        await aio_clear_tables(database, models, **options)
    elif how == "clear_tables":
        clear_tables(database, models, **options)
    else:
        with WriteTracker(database, **options) as tracker:
            tracker.everything = True  # as after a statement it could not read: every table counts as written
        models = bound_models(database) if models is None else models
        await tracker.aio_clear(models) if how == "WriteTracker.aio_clear" else tracker.clear(models)


CLEARS = ["aio_clear_tables", "clear_tables", "WriteTracker.aio_clear", "WriteTracker.clear"]


def model(database: Any, table: str, **meta: Any) -> Any:
    """A model of table ``table`` (a ``name`` column), bound to ``database``, with ``meta`` as its Meta options."""
    return type(
        f"{table.title()}Model",
        (peewee_async.AioModel,),
        {"name": peewee.CharField(), "Meta": type("Meta", (), {"database": database, "table_name": table, **meta})},
    )


@pytest.mark.parametrize("how", CLEARS)
@pytest.mark.parametrize("binding", ["another database", "a proxy to another database", "no database"])
async def test_a_model_of_another_database_is_refused_and_its_namesake_table_kept(
    database: Any, tmp_path: Path, how: str, binding: str
) -> None:
    other = peewee_async.SqliteDatabase(str(tmp_path / "other.db"))
    proxy = peewee.DatabaseProxy()
    proxy.initialize(other)
    namesake = model({"another database": other, "a proxy to another database": proxy}.get(binding), "author")
    await Author.aio_create(name="ada")
    with pytest.raises(ConfigurationError, match=r"not bound to it: AuthorModel") as refused:
        await clear(how, database, [Author, namesake])
    assert "bound_models(database)" in str(refused.value), "the error says how to proceed"
    assert await names() == ["ada"], "the table of the given database was emptied"
    await Author.delete().aio_execute()


def on_server(server: Any, name: str, driver: str, **params: Any) -> Any:
    """A peewee-async database of ``driver`` for database ``name`` of ``server`` (the production stand-in, as role
    ``app``, or a :class:`PostgresServer`)."""
    if isinstance(server, PostgresServer):
        params = {**server.connect_params(name), **params}
    else:
        params = {"database": name, "host": server.host, "port": server.port, "user": ROLE, **params}
        params.setdefault("password", server.password)
    cls = peewee_async.PostgresqlDatabase if driver == "aiopg" else peewee_async.Psycopg3Database
    return cls(**params)


PG_TRICKS = {
    "plain": ("shop", {}),
    "test_ only in the schema": ("shop", {"schema": "test_shop"}),
    # psycopg 3's pool pastes the name into a URL, unquoted: its query sends the connection to shop
    "test_ only before the URL's query": ("test_shop?dbname=shop", {}),
}
PG_CASES = [
    *((driver, trick) for trick in list(PG_TRICKS)[:2] for driver in ("aiopg", "psycopg")),
    ("psycopg", "test_ only before the URL's query"),  # aiopg quotes the name: a database of that very name
]


@pytest.mark.parametrize("how", CLEARS)
@pytest.mark.parametrize(("driver", "trick"), PG_CASES)
async def test_a_database_that_is_not_a_test_database_is_refused_before_any_statement(
    production: Production, how: str, driver: str, trick: str
) -> None:
    name, meta = PG_TRICKS[trick]
    shop = on_server(production, name, driver)
    item = model(shop, "item", **meta)
    with pytest.raises(ConfigurationError) as refused:
        await clear(how, shop, [item] if meta else None)
    message = str(refused.value)
    assert "is not a test database" in message
    assert f"{production.host}:{production.port}" in message
    assert "allow_any_database=True" in message
    assert production.password not in message
    assert shop.pool_backend.pool is None
    # the production fixture then checks, from the server's log, that nothing reached shop: no connection at all


@pytest.fixture
def staging(production: Production) -> Iterator[str]:
    """A database ``staging`` on the real server, not a test database, table ``item`` holding a row."""
    production.admin(f"CREATE DATABASE staging OWNER {ROLE}")
    production.admin(f"SET ROLE {ROLE}; CREATE TABLE item (id serial PRIMARY KEY, name text)", "staging")
    production.admin("INSERT INTO item (name) VALUES ('kept')", "staging")
    yield "staging"
    production.admin("DROP DATABASE staging WITH (FORCE)")


@pytest.mark.parametrize("how", CLEARS)
@pytest.mark.parametrize("driver", ["aiopg", "psycopg"])
async def test_any_database_is_cleared_when_told_so_explicitly(
    production: Production, staging: str, how: str, driver: str
) -> None:
    database = on_server(production, staging, driver)
    item = model(database, "item")
    with pytest.raises(ConfigurationError, match="'staging'"):
        await clear(how, database)
    assert production.admin("SELECT count(*) FROM item", staging) == [(1,)]
    await clear(how, database, allow_any_database=True)
    assert production.admin("SELECT count(*) FROM item", staging) == [(0,)]
    assert item._meta.database is database
    await database.aio_close()


@pytest.mark.parametrize("driver", ["aiopg", "psycopg"])
async def test_a_database_named_test_something_is_a_test_database_on_any_server(
    production: Production, driver: str
) -> None:
    production.admin(f"CREATE DATABASE test_shop OWNER {ROLE}")
    try:
        production.admin(f"SET ROLE {ROLE}; CREATE TABLE item (id serial PRIMARY KEY, name text)", "test_shop")
        production.admin("INSERT INTO item (name) VALUES ('gone')", "test_shop")
        database = on_server(production, "test_shop", driver)
        item = model(database, "item")  # kept: a model class no one refers to may be collected, and not found
        assert item._meta.database is database
        await aio_clear_tables(database)
        await database.aio_close()
        assert production.admin("SELECT count(*) FROM item", "test_shop") == [(0,)]
    finally:
        production.admin("DROP DATABASE test_shop WITH (FORCE)")


@pytest.fixture
def shop_on_pg_server(pg_server: PostgresServer) -> Iterator[str]:
    """A database ``shop_<worker>`` (not named test_...) on this run's throwaway server, table ``item`` with a row."""
    name = f"shop_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    admin(pg_server, f'CREATE DATABASE "{name}"')
    admin(pg_server, "CREATE TABLE item (id serial PRIMARY KEY, name text)", database=name)
    admin(pg_server, "INSERT INTO item (name) VALUES ('row')", database=name)
    yield name
    admin(pg_server, f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.mark.parametrize("driver", ["aiopg", "psycopg"])
async def test_any_database_of_a_throwaway_server_of_this_process_is_a_test_database(
    pg_server: PostgresServer, shop_on_pg_server: str, driver: str
) -> None:
    if pg_server.attached:
        pytest.skip("the run uses a server of yours ($PEEWEE_ASYNC_TESTING_DSN), not a throwaway one")
    database = on_server(pg_server, shop_on_pg_server, driver)
    item = model(database, "item")  # kept: a model class no one refers to may be collected, and not found
    assert item._meta.database is database
    await aio_clear_tables(database)
    await database.aio_close()
    assert admin(pg_server, "SELECT count(*) FROM item", database=shop_on_pg_server) == [(0,)]


REDIRECTS: dict[str, dict[str, Any]] = {
    "hostaddr": {"hostaddr": "127.0.0.1"},
    "the pool's hostaddr": {"pool_params": {"hostaddr": "127.0.0.1"}},
    "a service": {"service": "anything"},
    "PGHOSTADDR": {},
}


@pytest.mark.parametrize("redirect", REDIRECTS)
async def test_a_throwaway_server_is_not_trusted_when_libpq_may_connect_elsewhere(
    pg_server: PostgresServer, shop_on_pg_server: str, redirect: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if redirect == "PGHOSTADDR":
        monkeypatch.setenv("PGHOSTADDR", "127.0.0.1")
    database = on_server(pg_server, shop_on_pg_server, "aiopg", **REDIRECTS[redirect])
    item = model(database, "item")  # kept: a model class no one refers to may be collected, and not found
    assert item._meta.database is database
    with pytest.raises(ConfigurationError, match="is not a test database"):
        await aio_clear_tables(database)
    assert admin(pg_server, "SELECT count(*) FROM item", database=shop_on_pg_server) == [(1,)]


def is_temporary(place: str) -> bool:
    """Whether ``place``, every link resolved, is in a folder that the guard may take for a temporary one: ``/tmp``,
    ``/dev/shm`` or ``tempfile.gettempdir()`` (the guard takes fewer, never more)."""
    real = os.path.realpath(place)
    folders = {os.path.realpath(folder) for folder in ("/tmp", "/dev/shm", tempfile.gettempdir())}
    return any(os.path.commonpath([real, folder]) == folder for folder in folders)


@pytest.fixture
def outside(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A fresh empty folder outside every temporary folder, removed after the test whatever happened.

    It is made in the project when the project is not itself in a temporary folder (a clone in ``/tmp`` is),
    else in ``$HOME``, else in ``/var/tmp`` (which the guard does not take for temporary); the test is skipped
    when none of them is both outside the temporary folders and writable."""
    places = [str(request.config.rootpath), os.path.expanduser("~"), "/var/tmp"]
    place = next(
        (p for p in places if os.path.isdir(p) and os.access(p, os.W_OK | os.X_OK) and not is_temporary(p)), None
    )
    if place is None:
        pytest.skip(
            f"no writable folder outside the temporary folders to put a database in (tried {', '.join(places)})"
        )
    folder = Path(tempfile.mkdtemp(prefix=".peewee-async-testing-outside-", dir=place))
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


@pytest.fixture
def prod_db(outside: Path) -> Path:
    """``prod.db``, an SQLite file outside every temporary folder, table ``item`` with a row."""
    path = outside / "prod.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT)")
        connection.execute("INSERT INTO item (name) VALUES ('kept')")
    connection.close()
    return path


def sqlite_rows(path: Path) -> int:
    connection = sqlite3.connect(path)
    try:
        return int(connection.execute("SELECT count(*) FROM item").fetchone()[0])
    finally:
        connection.close()


def sqlite_trick(trick: str, prod_db: Path, tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    """A peewee-async SQLite database whose tables are in ``prod_db`` by ``trick``, and its model's Meta options."""
    if trick == "a path through a temporary folder":
        temp = tempfile.gettempdir()  # /tmp/../../srv/prod.db
        return peewee_async.SqliteDatabase(os.path.join(temp, os.path.relpath(prod_db, temp))), {}
    if trick == "a link in a temporary folder":
        (tmp_path / "link.db").symlink_to(prod_db)
        return peewee_async.SqliteDatabase(str(tmp_path / "link.db")), {}
    if trick == "a linked folder in a temporary folder":
        (tmp_path / "folder").symlink_to(prod_db.parent)
        return peewee_async.SqliteDatabase(str(tmp_path / "folder" / prod_db.name)), {}
    if trick == "a URI":
        return peewee_async.SqliteDatabase(f"file:{prod_db}?cache=private", uri=True), {}
    if trick == "a URI that looks like a relative path in a temporary folder":
        os.chdir(tmp_path)  # SQLite reads names starting file: as URIs when built so (as Debian's is)
        return peewee_async.SqliteDatabase(f"file:{prod_db}"), {}
    if trick == "an attached database":
        database = peewee_async.SqliteDatabase(str(tmp_path / "test.db"))
        database.attach(str(prod_db), "prod")
        return database, {"schema": "prod"}
    return peewee_async.SqliteDatabase(str(prod_db)), {}


SQLITE_TRICKS = [
    "plain",
    "a path through a temporary folder",
    "a link in a temporary folder",
    "a linked folder in a temporary folder",
    "a URI",
    "a URI that looks like a relative path in a temporary folder",
    "an attached database",
]


@pytest.mark.parametrize("how", CLEARS)
@pytest.mark.parametrize("trick", SQLITE_TRICKS)
async def test_an_sqlite_file_outside_the_temporary_folders_is_refused(
    prod_db: Path, tmp_path: Path, how: str, trick: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(os.getcwd())  # undo the chdir of a trick
    database, meta = sqlite_trick(trick, prod_db, tmp_path)
    item = model(database, "item", **meta)
    with pytest.raises(ConfigurationError, match=r"is not a test database.*allow_any_database=True"):
        await clear(how, database, [item])
    assert sqlite_rows(prod_db) == 1


#: Where ``$TMPDIR`` points in each case (``~``: prod.db's folder, made ``$HOME``), and whether the current
#: folder is prod.db's.
TMPDIRS = {
    "the current folder": (".", True),
    "/": ("/", True),
    "above the current folder": ("..", True),
    "$HOME": ("~", False),
    "above $HOME": ("~/..", False),
}


@pytest.mark.parametrize("how", CLEARS)
@pytest.mark.parametrize("tmpdir", TMPDIRS)
async def test_an_sqlite_file_is_not_temporary_for_a_tmpdir_that_holds_the_project_or_home(
    prod_db: Path, tmp_path: Path, how: str, tmpdir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    value, in_prod = TMPDIRS[tmpdir]
    monkeypatch.chdir(prod_db.parent if in_prod else tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path if in_prod else prod_db.parent))
    monkeypatch.setenv("TMPDIR", value.replace("~", str(prod_db.parent)))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads $TMPDIR again
    database = peewee_async.SqliteDatabase(str(prod_db))
    with pytest.raises(ConfigurationError, match=r"is not a test database.*allow_any_database=True"):
        await clear(how, database, [model(database, "item")])
    assert sqlite_rows(prod_db) == 1


async def test_an_sqlite_file_in_a_folder_made_for_test_databases_is_a_test_database(outside: Path) -> None:
    folder = outside / ".peewee-async-testing-sqlite-x"
    folder.mkdir()
    database = peewee_async.SqliteDatabase(str(folder / "test.db"))
    with pytest.raises(ConfigurationError, match="is not a test database"):
        await aio_clear_tables(database)  # .peewee-...: not this library's folder
    folder = folder.rename(outside / "peewee-async-testing-sqlite-x")
    database = peewee_async.SqliteDatabase(str(folder / "test.db"))
    await database.aio_create_tables([model(database, "item")])
    await aio_clear_tables(database)
    await database.aio_close()


@pytest.mark.parametrize("how", CLEARS)
@pytest.mark.parametrize("name", ["file", ":memory:", "file::memory:?cache=shared", "file:memdb1?mode=memory"])
async def test_a_temporary_sqlite_database_is_a_test_database(tmp_path: Path, how: str, name: str) -> None:
    if name == "file":
        database = peewee_async.SqliteDatabase(str(tmp_path / "test.db"))
    else:
        database = peewee_async.SqliteDatabase(name, uri=name.startswith("file:"))
    item = model(database, "item")
    await database.aio_create_tables([item])
    await clear(how, database)
    await database.aio_close()


# -- MySQL's own: foreign key checks, AUTO_INCREMENT, its SQL -----------------------------------------------------


@pytest.fixture
async def one_connection(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """A MySQL database object on this run's MariaDB test database, whose pool holds one connection: what a clear
    leaves on its session, the next query sees; its tables ``parent`` and ``child`` (``child.parent_id``
    references ``parent``, ``parent.favourite_id`` references ``child``, and ``child.sibling_id`` references
    ``child``: a cycle, and a table that references itself), dropped at the end."""
    server = request.getfixturevalue("mysql_server")
    params = server.connect_params(request.getfixturevalue("mysql_database"))
    db = peewee_async.MySQLDatabase(**params, pool_params={"minsize": 0, "maxsize": 1})
    for sql in (
        "CREATE TABLE parent (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20), favourite_id INT)",
        "CREATE TABLE child (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20), parent_id INT, sibling_id INT,"
        " FOREIGN KEY (parent_id) REFERENCES parent (id), FOREIGN KEY (sibling_id) REFERENCES child (id))",
        "ALTER TABLE parent ADD FOREIGN KEY (favourite_id) REFERENCES child (id)",
    ):
        await db.aio_execute_sql(sql)
    try:
        yield db
    finally:
        await db.aio_execute_sql(f"{MYSQL_OFF}; DROP TABLE child, parent; {MYSQL_BACK}")
        await db.aio_close()


async def fill_linked(db: Any) -> None:
    """Rows in ``parent`` and ``child`` that reference each other (and a child its sibling)."""
    await db.aio_execute_sql(
        f"{MYSQL_OFF}; INSERT INTO parent (name, favourite_id) VALUES ('p', 2);"
        " INSERT INTO child (name, parent_id, sibling_id) VALUES ('a', 1, 2), ('b', 1, 1);"
        f" {MYSQL_BACK}"
    )


async def session_checks(db: Any) -> int:
    """The foreign key checks of the session the next query runs on: the pool's one connection, or peewee's
    synchronous one (inside ``allow_sync()``, kept open until its end)."""
    if db._allow_sync:
        return int(db.execute_sql("SELECT @@SESSION.foreign_key_checks").fetchone()[0])
    rows = await db.aio_execute_sql("SELECT @@SESSION.foreign_key_checks", fetch_results=fetchall)
    return int(rows[0][0])


def on_the_session_of(db: Any, how: str) -> Any:
    """Where the clear ``how`` runs: peewee's synchronous connection, kept open for the block, or the pool."""
    return db.allow_sync() if how in ("clear_tables", "WriteTracker.clear") else contextlib.nullcontext()


async def clear_delete(how: str, db: Any, models: list[Any]) -> None:
    """:func:`clear` with the ``delete`` strategy (the tracker's only one)."""
    await clear(how, db, models, **({"strategy": "delete"} if how in ("aio_clear_tables", "clear_tables") else {}))


@pytest.mark.parametrize("checks", [1, 0])
@pytest.mark.parametrize("how", CLEARS)
async def test_mysql_foreign_key_checks_are_put_back_as_they_were_after_a_clear_that_failed(
    one_connection: Any, how: str, checks: int
) -> None:
    db = one_connection
    parent, child = model(db, "parent"), model(db, "child")
    await fill_linked(db)
    await db.aio_execute_sql(
        "CREATE TRIGGER child_kept BEFORE DELETE ON child FOR EACH ROW"
        " SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'child rows are kept'"
    )
    try:
        with on_the_session_of(db, how):
            await db.aio_execute_sql(f"SET SESSION foreign_key_checks = {checks}")
            if db._allow_sync:
                db.execute_sql(f"SET SESSION foreign_key_checks = {checks}")
            with pytest.raises(peewee.DatabaseError, match="child rows are kept"):
                await clear_delete(how, db, [parent, child])
            assert await session_checks(db) == checks, "the clear left the session's foreign key checks changed"
        await db.aio_execute_sql("SET SESSION foreign_key_checks = 1")
    finally:
        await db.aio_execute_sql("DROP TRIGGER child_kept")


@pytest.mark.parametrize("strategy", ["truncate", "delete"])
@pytest.mark.parametrize("how", CLEARS)
async def test_mysql_tables_that_reference_each_other_are_emptied_and_their_ids_restart(
    one_connection: Any, how: str, strategy: str
) -> None:
    """A cycle of foreign keys and a table that references itself: no order of DELETE or TRUNCATE would do with
    the checks on (TRUNCATE of a referenced table fails outright); with them off, any order does."""
    if how.startswith("WriteTracker") and strategy == "truncate":
        pytest.skip("the tracker always deletes")
    db = one_connection
    parent, child = model(db, "parent"), model(db, "child")
    await fill_linked(db)
    options = {"strategy": strategy} if how in ("aio_clear_tables", "clear_tables") else {}
    with on_the_session_of(db, how):
        await clear(how, db, [child, parent], **options)
        assert await session_checks(db) == 1
    assert [await parent.select().aio_count(), await child.select().aio_count()] == [0, 0]
    ids = await db.aio_execute_sql(
        "SELECT AUTO_INCREMENT FROM information_schema.TABLES"
        " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('parent', 'child')",
        fetch_results=fetchall,
    )
    assert [next_id for (next_id,) in ids] == [1, 1], "the AUTO_INCREMENT counters were not reset"


async def test_mysql_runs_its_own_sql_never_sqlite_s(database: Any, statements: list[str]) -> None:
    """The issue's bug: aio_clear_tables on MySQL ran SQLite's ``sqlite_master`` query and failed (``Table
    'test_app.sqlite_master' doesn't exist``)."""
    if not is_mysql(database):
        pytest.skip("MySQL's clear")
    await fill()
    for strategy in STRATEGIES:
        await aio_clear_tables(database, strategy=strategy)
        clear_tables(database, strategy=strategy)
    assert await counts() == [0, 0, 0]
    assert not [sql for sql in statements if "sqlite" in sql]


async def test_mysql_sync_clear_is_one_string_where_the_connection_runs_several(
    one_connection: Any, sync_statements: list[str]
) -> None:
    """PyMySQL runs one statement a string unless its connection was made with ``MULTI_STATEMENTS``: then the
    synchronous clear is one round trip (after the one that asks which tables exist), as the async one is."""
    params = {**one_connection.connect_params, "database": one_connection.database}
    sent = {}
    for flag in (0, 1 << 16):  # pymysql.constants.CLIENT.MULTI_STATEMENTS
        db = peewee_async.MySQLDatabase(**params, client_flag=flag)
        items = model(db, "parent")
        sync_statements.clear()
        clear_tables(db, [items], strategy="delete")
        sent[flag] = list(sync_statements)
        await db.aio_close()
    assert len(sent[0]) == 1 + 4, sent[0]  # checks off, DELETE, ALTER TABLE, checks back
    assert len(sent[1 << 16]) == 2, sent[1 << 16]
    assert sent[1 << 16][1] == "; ".join(sent[0][1:])


async def test_mysql_the_tracker_follows_foreign_keys_that_cascade(one_connection: Any) -> None:
    """An ``UPDATE`` of a parent's key rewrites, ``ON UPDATE CASCADE``, the rows that reference it: their table
    was written too, though no statement named it; a table no write reached keeps its rows."""
    db = one_connection
    await db.aio_execute_sql(
        "CREATE TABLE note (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20), parent_id INT,"
        " FOREIGN KEY (parent_id) REFERENCES parent (id) ON UPDATE CASCADE)"
    )
    try:
        parent, child, note = model(db, "parent"), model(db, "child"), model(db, "note")
        await db.aio_execute_sql("INSERT INTO parent (id, name) VALUES (1, 'p')")
        await db.aio_execute_sql("INSERT INTO note (name, parent_id) VALUES ('n', 1)")
        await db.aio_execute_sql("INSERT INTO child (name) VALUES ('kept')")
        with WriteTracker(db) as tracker:
            await db.aio_execute_sql("UPDATE parent SET id = 7 WHERE id = 1")
        assert tracker.written([parent, child, note]) == [parent]
        await tracker.aio_clear([parent, child, note])
        assert [await table.select().aio_count() for table in (parent, child, note)] == [0, 1, 0]
    finally:
        await db.aio_execute_sql("DROP TABLE note")


@pytest.mark.parametrize("how", CLEARS)
@pytest.mark.parametrize("trick", ["plain", "test_ only in the schema"])
async def test_mysql_a_database_that_is_not_a_test_database_is_refused_before_any_statement(
    how: str, trick: str
) -> None:
    """Not named test_..., not on a throwaway server of this process: refused, naming where it is and never its
    password, before anything connects (nothing listens on that port: a connection would fail otherwise)."""
    shop = peewee_async.MySQLDatabase("shop", host="127.0.0.1", port=1, user="app", password="hunter2")
    item = model(shop, "item", **({"schema": "test_shop"} if trick != "plain" else {}))
    with pytest.raises(ConfigurationError) as refused:
        await clear(how, shop, [item] if trick != "plain" else None)
    message = str(refused.value)
    assert "is not a test database" in message
    assert "'shop' on 127.0.0.1:1" in message
    assert "hunter2" not in message
    assert shop.pool_backend.pool is None


@pytest.mark.parametrize("how", CLEARS)
async def test_mysql_any_database_of_a_throwaway_server_of_this_process_is_a_test_database(
    request: pytest.FixtureRequest, how: str
) -> None:
    server = request.getfixturevalue("mysql_server")
    mysql_admin(server, "CREATE DATABASE scratch")
    try:
        mysql_admin(server, "CREATE TABLE scratch.item (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20))")
        mysql_admin(server, "INSERT INTO scratch.item (name) VALUES ('gone')")
        database = peewee_async.MySQLDatabase(**server.connect_params("scratch"))
        item = model(database, "item")  # kept: a model class no one refers to may be collected, and not found
        await clear(how, database)
        assert item._meta.database is database
        await database.aio_close()
        assert mysql_admin(server, "SELECT COUNT(*) FROM scratch.item") == [(0,)]
    finally:
        mysql_admin(server, "DROP DATABASE scratch")
