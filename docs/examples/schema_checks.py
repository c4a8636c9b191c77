import asyncio
import os
import sys
import tempfile

import peewee
import peewee_async

from peewee_async_testing import (
    TransactionTestCase,
    assert_all_models_registered,
    assert_models_match_schema,
)


class Author(peewee_async.AioModel):
    name = peewee.CharField(max_length=100, unique=True)


class Book(peewee_async.AioModel):
    title = peewee.CharField(max_length=200)
    author = peewee.ForeignKeyField(Author, on_delete="CASCADE")
    stock = peewee.IntegerField(constraints=[peewee.SQL("DEFAULT 0")])


async def main(database: peewee_async.SqliteDatabase) -> None:
    database.bind([Author, Book])
    await database.aio_create_tables([Author, Book])
    await assert_models_match_schema(database)  # every model bound to it: no drift

    async with TransactionTestCase(database):  # the check sees the block's own DDL
        # What a forgotten migration leaves: SQLite rebuilds a table to change it.
        await database.aio_execute_sql('DROP TABLE "book"')
        await database.aio_execute_sql(
            'CREATE TABLE "book" ("id" INTEGER NOT NULL PRIMARY KEY,'
            ' "title" TEXT NOT NULL, "author_id" INTEGER NOT NULL'
            ' REFERENCES "author" ("id"), "isbn" TEXT)'
        )
        try:
            await assert_models_match_schema(database, [Author, Book])
            raise RuntimeError("the check passed")
        except AssertionError as failure:
            print(failure)
            assert str(failure).splitlines()[1:] == [
                '  book: column "title" is VARCHAR(200) NOT NULL in the models,'
                " TEXT NOT NULL in the database",
                '  book: column "stock" missing'
                " (INTEGER NOT NULL DEFAULT 0 in the models)",
                '  book: column "isbn" not in the models (TEXT NULL in the database)',
                "  book: foreign key author_id -> author(id) ON DELETE CASCADE"
                " in the models, ON DELETE NO ACTION in the database",
                "  book: index (author_id) missing",
            ]
    await assert_models_match_schema(database)  # rolled back
    await database.aio_close()


def registered(folder: str) -> None:
    """A package whose second model module nothing imports."""
    os.makedirs(os.path.join(folder, "bookshop"))
    files = {
        "__init__.py": "from bookshop import models\n",
        "db.py": "import peewee_async\ndatabase = peewee_async.SqliteDatabase(None)\n",
        "models.py": (
            "import peewee, peewee_async\nfrom bookshop.db import database\n"
            "class Order(peewee_async.AioModel):\n"
            "    class Meta:\n        database = database\n"
        ),
        "invoices.py": (
            "import peewee, peewee_async\nfrom bookshop.db import database\n"
            "class Invoice(peewee_async.AioModel):\n"
            "    class Meta:\n        database = database\n"
        ),
    }
    for name, text in files.items():
        with open(os.path.join(folder, "bookshop", name), "w") as file:
            file.write(text)
    sys.path.insert(0, folder)
    import bookshop  # what the plugin would import: bookshop.invoices is not among it

    created = [bookshop.models.Order]  # the models the test database is built for
    try:
        assert_all_models_registered("bookshop", models=created)
        raise RuntimeError("the check passed")
    except AssertionError as failure:
        print(failure)
        assert '  bookshop.invoices.Invoice (table "invoice")' in str(failure)


with tempfile.TemporaryDirectory() as folder:
    asyncio.run(main(peewee_async.SqliteDatabase(os.path.join(folder, "shop.db"))))
    registered(folder)
