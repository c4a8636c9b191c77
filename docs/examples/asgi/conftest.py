"""The app's test database, and an HTTP client that calls the app in-process."""

import httpx
import pytest
import pytest_asyncio
from app import Note, app, database
from psycopg2 import connect


@pytest_asyncio.fixture(scope="session")
async def peewee_database(peewee_server):
    admin = connect(peewee_server.dsn)
    admin.autocommit = True
    admin.cursor().execute("CREATE DATABASE asgi_tests")
    database.init(**peewee_server.connect_params("asgi_tests"))
    await database.aio_create_tables([Note])
    yield database
    await database.aio_close()
    admin.cursor().execute("DROP DATABASE asgi_tests WITH (FORCE)")
    admin.close()


@pytest.fixture
async def client(in_transaction):
    # ASGITransport runs the app in the test's own task and event loop: the
    # handler's queries go through the patched database, so they run inside the
    # test transaction too.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        yield client
