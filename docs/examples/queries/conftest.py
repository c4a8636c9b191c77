"""The query-counting example's database: made on the plugin's server, two tables."""

import peewee
import peewee_async
import pytest
import pytest_asyncio
from psycopg2 import connect

database = peewee_async.PostgresqlDatabase(None)


class Author(peewee_async.AioModel):
    name = peewee.CharField(unique=True)

    class Meta:
        database = database


class Book(peewee_async.AioModel):
    title = peewee.CharField()
    author = peewee.ForeignKeyField(Author, backref="books")

    class Meta:
        database = database


@pytest_asyncio.fixture(scope="session")
async def peewee_database(peewee_server):
    admin = connect(peewee_server.dsn)
    admin.autocommit = True
    admin.cursor().execute("CREATE DATABASE query_tests")
    database.init(**peewee_server.connect_params("query_tests"))
    await database.aio_create_tables([Author, Book])
    yield database
    await database.aio_close()
    admin.cursor().execute("DROP DATABASE query_tests WITH (FORCE)")
    admin.close()


@pytest.fixture(autouse=True)
def _isolate(in_transaction):
    """Every test in a rolled-back transaction."""
