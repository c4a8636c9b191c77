"""The project's own test set-up: one throwaway PostgreSQL server for the whole run, and a test
database on it (one per pytest-xdist worker). ``PEEWEE_ASYNC_TESTING_DSN`` points it at a server
of yours instead."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg2
import pytest

from peewee_async_testing import PostgresServer


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """The PostgreSQL server of this run: started here, stopped and removed at the end."""
    with PostgresServer() as server:
        yield server


def admin(server: PostgresServer, sql: str) -> None:
    """Run one statement on the server's ``postgres`` database, outside any transaction."""
    connection = psycopg2.connect(**server.connect_params("postgres"))
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(sql)
    finally:
        connection.close()


@pytest.fixture(scope="session")
def pg_database(pg_server: PostgresServer) -> Iterator[str]:
    """The name of an empty database made for this run (and worker), dropped at the end."""
    name = f"peewee_async_testing_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    admin(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin(pg_server, f'CREATE DATABASE "{name}"')
    yield name
    admin(pg_server, f'DROP DATABASE "{name}" WITH (FORCE)')
