"""Hands the shop's database to the plugin: a `test_shop` database on a throwaway PostgreSQL server.

That is all the set-up the tests need: the plugin's `in_transaction` fixture (made autouse below)
rolls back every test, and `clear_tables` empties the tables after tests that use sync queries.
"""

import psycopg2
import pytest
import pytest_asyncio

from peewee_async_testing import PostgresServer
from shop.db import database
from shop.models import MODELS


def run(server: PostgresServer, sql: str) -> None:
    connection = psycopg2.connect(**server.connect_params("postgres"))
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(sql)
    connection.close()


@pytest.fixture(scope="session")
def postgres():
    with PostgresServer() as server:  # or PEEWEE_ASYNC_TESTING_DSN=postgresql://... for a server of yours
        yield server


@pytest_asyncio.fixture(scope="session")
async def peewee_database(postgres):
    run(postgres, "CREATE DATABASE test_shop")
    database.init(**postgres.connect_params("test_shop"))
    await database.aio_create_tables(MODELS)
    yield database
    await database.aio_close()
    run(postgres, "DROP DATABASE test_shop")


@pytest.fixture(autouse=True)
def _isolate(in_transaction):
    """Every test runs in a transaction that is rolled back afterwards."""
