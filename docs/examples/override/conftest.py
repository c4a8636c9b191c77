"""A database you manage yourself: override `peewee_database`; the plugin isolates."""

import peewee
import peewee_async
import pytest
import pytest_asyncio
from psycopg2 import connect

database = peewee_async.PostgresqlDatabase(None)


class Event(peewee_async.AioModel):
    name = peewee.CharField(unique=True)

    class Meta:
        database = database


@pytest_asyncio.fixture(scope="session")
async def peewee_database(peewee_server):
    # peewee_server: the plugin's server (throwaway, or $PEEWEE_ASYNC_TESTING_DSN)
    admin = connect(peewee_server.dsn)
    admin.autocommit = True
    admin.cursor().execute("CREATE DATABASE my_tests")
    database.init(**peewee_server.connect_params("my_tests"))
    await database.aio_create_tables([Event])
    yield database
    await database.aio_close()
    admin.cursor().execute("DROP DATABASE my_tests WITH (FORCE)")
    admin.close()


@pytest.fixture(autouse=True)
def _isolate(in_transaction):
    """Every test in a rolled-back transaction."""
