"""The seed rows kept and put back on MySQL, at the level of the seeds module: kept from the database, then put
back after a clear made by hand (deleted rows, an AUTO_INCREMENT set back), by the statements the clear runs.
The plugin's own seed tests (tests/plugin/test_schema_building.py) run on PostgreSQL and SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from peewee_async.databases import fetchall

from peewee_async_testing import seeds

from .helpers import is_mysql
from .models import MODELS, Author, Book, Review


@pytest.fixture
async def seeded(database: Any) -> AsyncIterator[Any]:
    """The MySQL database, with committed seed rows (two authors, a book, a review, two rows of a table without a
    key) kept by seeds.keep; the rows and the keyless table are gone after the test."""
    if not is_mysql(database):
        pytest.skip("MySQL's seed rows (the plugin's tests cover PostgreSQL and SQLite)")
    await database.aio_execute_sql("CREATE TABLE `note` (`text` VARCHAR(20) NOT NULL)")
    try:
        ada = await Author.aio_create(name="ada")
        await Author.aio_create(name="grace")
        book = await Book.aio_create(title="Engines", author=ada)
        await Review.aio_create(book=book, stars=5)
        await database.aio_execute_sql("INSERT INTO `note` (`text`) VALUES ('one'), ('one')")  # the same twice
        with database.allow_sync():
            seeds.keep(database)
        yield database
    finally:
        seeds.forget(database)
        await database.aio_execute_sql("DROP TABLE `note`")
        for model in reversed(MODELS):
            await model.delete().aio_execute()


async def rows(database: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the seeded tables, in order."""
    found = {}
    for table in ("author", "book", "review", "note"):
        found[table] = list(
            await database.aio_execute_sql(f"SELECT * FROM `{table}` ORDER BY 1", fetch_results=fetchall)
        )
    return found


async def put_back(database: Any) -> None:
    """What a clear does after emptying tables: run the statements that put the seed rows back."""
    for sql, params in seeds.restore_plan(database):
        await database.aio_execute_sql(sql, params)


async def test_rows_a_clear_deleted_are_put_back_once(seeded: Any) -> None:
    kept = await rows(seeded)
    await Review.delete().aio_execute()
    await Book.delete().aio_execute()
    await Author.delete().where(Author.name == "grace").aio_execute()  # ada stays: not inserted twice
    await seeded.aio_execute_sql("DELETE FROM `note`")
    await put_back(seeded)
    assert await rows(seeded) == kept
    await put_back(seeded)  # nothing missing: nothing added, the keyless table's rows not doubled
    assert await rows(seeded) == kept


async def test_an_auto_increment_set_back_by_a_clear_moves_past_the_seed_rows(seeded: Any) -> None:
    for model in reversed(MODELS):
        await model.delete().aio_execute()
    await seeded.aio_execute_sql("ALTER TABLE `author` AUTO_INCREMENT = 1")  # as TRUNCATE does
    await put_back(seeded)
    newcomer = await Author.aio_create(name="linus")
    seed_ids = [author.id for author in await Author.select().where(Author.name != "linus").aio_execute()]
    assert len(seed_ids) == 2
    assert newcomer.id > max(seed_ids)


async def test_a_copy_of_the_seeded_database_reads_its_seed_rows_again(seeded: Any) -> None:
    copy = type(seeded)(seeded.database, **seeded.connect_params)  # another object on the database, as a worker's
    try:
        assert seeds.restore_plan(copy) == []
        with copy.allow_sync():
            seeds.load(copy)
        assert seeds.restore_plan(copy) == seeds.restore_plan(seeded)
    finally:
        seeds.forget(copy)
        await copy.aio_close()
