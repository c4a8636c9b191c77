import asyncio
import tempfile
from pathlib import Path

import peewee
import peewee_async

from peewee_async_testing import (
    TransactionTestCase,
    assert_num_queries,
    capture_queries,
)

database = peewee_async.SqliteDatabase(None)


class Author(peewee_async.AioModel):
    name = peewee.CharField(unique=True)

    class Meta:
        database = database


async def main() -> None:
    await database.aio_create_tables([Author])

    # The same count with a test transaction and without one.
    # aio_atomic(): BEGIN and COMMIT, listed and not counted
    async with assert_num_queries(database, 2), database.aio_atomic():
        await Author.aio_create(name="ada")
        await Author.aio_create(name="grace")
    async with (
        TransactionTestCase(database, allow_transactions=True),
        assert_num_queries(database, 2),
        database.aio_atomic(),  # a SAVEPOINT here, not counted either
    ):
        await Author.aio_create(name="hedy")
        await Author.aio_create(name="joan")

    # Every statement, in order, with its parameters and time.
    async with capture_queries(database) as captured:
        await asyncio.gather(  # tasks started inside are seen too
            *(Author.aio_get(Author.name == name) for name in ("ada", "grace"))
        )
    assert len(captured) == 2
    assert sorted(query.params[0] for query in captured) == ["ada", "grace"]
    assert all(query.duration >= 0 for query in captured)

    # A failure lists what ran, and names what repeats.
    try:
        async with assert_num_queries(database, 1):
            for name in ("ada", "grace"):
                await Author.aio_get(Author.name == name)
    except AssertionError as failure:
        print(failure)
    else:
        raise AssertionError("two queries passed for one")

    await database.aio_close()


with tempfile.TemporaryDirectory() as folder:
    database.init(str(Path(folder) / "example.db"))
    asyncio.run(main())
