"""The project's own test set-up: one throwaway PostgreSQL server for the whole run, a database on it (one
per pytest-xdist worker), and the ``database`` fixture: every test that takes it runs once per driver, aiopg,
psycopg 3, aiomysql (on a throwaway MariaDB server, started the first time a test needs it) and SQLite, on real
servers. ``PEEWEE_ASYNC_TESTING_DSN`` points the run at a server of yours instead.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import peewee_async
import pytest
import pytest_asyncio

from peewee_async_testing import MariaDBServer, PostgresServer

from .helpers import acquired, admin, mysql_admin
from .models import MODELS, database_proxy
from .production import Production, start_production

DRIVERS = ["aiopg", "psycopg", "mysql", "sqlite"]
_GONE = object()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """The PostgreSQL server of this run: started here, stopped and removed at the end."""
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def mysql_server() -> Iterator[MariaDBServer]:
    """The MariaDB server of this run: started here, stopped and removed at the end."""
    with MariaDBServer() as server:
        yield server


@pytest.fixture(scope="session")
def _production_server() -> Iterator[Production]:
    server, production = start_production()
    try:
        yield production
    finally:
        server.stop()


@pytest.fixture
def production(_production_server: Production) -> Iterator[Production]:
    """The stand-in for the user's real server (see tests/production.py); fails the test if it reached ``shop``."""
    _production_server.mark()
    yield _production_server
    _production_server.assert_untouched()


@pytest.fixture(scope="session")
def pg_database(pg_server: PostgresServer) -> Iterator[str]:
    """The name of an empty database made for this run (and worker), dropped at the end: a test database by its
    name, test_..., also on a server of yours, so that clean-up may empty it."""
    name = f"test_peewee_async_testing_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    admin(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin(pg_server, f'CREATE DATABASE "{name}"')
    yield name
    admin(pg_server, f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def mysql_database(mysql_server: Any) -> Iterator[str]:
    """The name of an empty database made for this run (and worker) on the MariaDB server, dropped at the end."""
    name = f"test_peewee_async_testing_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    mysql_admin(mysql_server, f"DROP DATABASE IF EXISTS `{name}`")
    mysql_admin(mysql_server, f"CREATE DATABASE `{name}`")
    yield name
    mysql_admin(mysql_server, f"DROP DATABASE `{name}`")


def make_database(driver: str, request: pytest.FixtureRequest, sqlite_path: Path) -> Any:
    """A peewee-async database of ``driver`` on this run's server (or an SQLite file)."""
    if driver == "sqlite":
        return peewee_async.SqliteDatabase(str(sqlite_path))
    if driver == "mysql":
        params = request.getfixturevalue("mysql_server").connect_params(request.getfixturevalue("mysql_database"))
        return peewee_async.MySQLDatabase(**params, pool_params={"minsize": 0, "maxsize": 10})
    server = request.getfixturevalue("pg_server")
    params = server.connect_params(request.getfixturevalue("pg_database"))
    if driver == "aiopg":
        return peewee_async.PostgresqlDatabase(**params, pool_params={"minsize": 0, "maxsize": 10})
    return peewee_async.Psycopg3Database(**params, pool_params={"min_size": 0, "max_size": 10})


@pytest_asyncio.fixture(scope="session", params=DRIVERS)
async def session_database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    db = make_database(request.param, request, tmp_path_factory.mktemp("sqlite") / "tests.db")
    database_proxy.initialize(db)
    await db.aio_create_tables(MODELS)
    with db.allow_sync():  # peewee notes the server's version at the first sync connection: here, not in a test
        db.connect(reuse_if_open=True)
    yield db
    database_proxy.initialize(db)
    await db.aio_drop_tables(MODELS)
    await db.aio_close()


@pytest_asyncio.fixture
async def database(session_database: Any) -> AsyncIterator[Any]:
    """The database of the driver under test, its tables empty; fails the test if it leaks rows, patches or a
    connection."""
    database_proxy.initialize(session_database)
    before = dict(vars(session_database))
    yield session_database
    after = vars(session_database)
    cls = type(session_database)  # an attribute set back to its class's value (as allow_sync() does) is no patch
    leaked_patches = {
        name
        for name in before.keys() | after.keys()
        if before.get(name, getattr(cls, name, _GONE)) is not after.get(name, getattr(cls, name, _GONE))
    }
    leaked_rows = {model.__name__: await model.select().aio_count() for model in MODELS}
    for model in reversed(MODELS):
        await model.delete().aio_execute()
    assert not leaked_patches, f"the test left patches on the database: {leaked_patches}"
    assert not any(leaked_rows.values()), f"the test left rows behind: {leaked_rows}"
    assert not await acquired(session_database), "the test left a connection acquired from the pool"
