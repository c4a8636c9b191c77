"""A scratch database for one test: empty, made beside the session's test database, removed after the test.

On PostgreSQL it is ``test_<name>_migrations`` (plus the suffix and the pytest-xdist worker, as the session's
test database), made on the session's server, marked as this project's and held by a connection while it
exists (so that no other session takes it for a crashed run's), and dropped after the test, also when the
test fails. One of the project's that no session holds (a killed run's) is dropped first; one that is not the
project's is never touched. On SQLite it is a file in a temporary folder of its own, removed after.

The database object is a new instance of the app database's class, with the app's own settings (an SQLite
database's pragmas, a PostgreSQL one's connection settings but where it connects), pointed at the scratch
database: never the app's object, which the plugin points at the session's test database.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
from peewee_async.databases import AioDatabase

from ._compat import sqlite_pragmas
from ._database import is_mysql, is_postgres
from .exceptions import ConfigurationError
from .guard import SQLITE_FOLDER_PREFIX
from .ownership import Project, database_name, execute, find, quote
from .schema_snapshot import Snapshot, postgres_snapshot, sqlite_snapshot
from .server import PostgresServer
from .testdb import SUFFIX_HINT, WHERE, server_params


@dataclass
class Scratch:
    """A scratch database: its database object, its name (an SQLite file's path), and a snapshot of its schema."""

    database: AioDatabase
    name: str
    snapshot: Callable[[], Snapshot]


def scratch_name(
    original: str | None, *, sqlite: bool, module: str, suffix: str = "", worker: str | None = None
) -> str:
    """``test_<name>_migrations[_<suffix>][_<worker>]``: ``<name>`` the app's own database name, ``original`` (an
    SQLite file's stem), or for a database created uninitialised the top package of ``module``."""
    base = (Path(original).stem if sqlite else original) if original else module.partition(".")[0]
    return database_name(f"{base or 'peewee'}_migrations", suffix=suffix, worker=worker)


@contextmanager
def scratch_database(
    app: AioDatabase,
    server: PostgresServer | None,
    *,
    original: str | None,
    module: str,
    suffix: str = "",
    worker: str | None = None,
) -> Iterator[Scratch]:
    """A scratch database like ``app`` (on ``server``, for PostgreSQL), removed when the block ends.

    :param original: the app's own database name (the plugin points the object elsewhere during the session).
    :param module: the module holding the app's database object: with ``original``, the project in the mark.
    :raises ConfigurationError: if the name is taken by a database that is not the project's, or in use.
    """
    if is_mysql(app):
        raise ConfigurationError(
            "The ready-made migration tests run on PostgreSQL and SQLite, not yet on MySQL (they compare schema "
            "snapshots, which this version reads from PostgreSQL and SQLite only). Switch them off for a MySQL "
            "database: peewee_async_migration_tests = false, and no --peewee-migration-tests."
        )
    name = scratch_name(original, sqlite=not is_postgres(app), module=module, suffix=suffix, worker=worker)
    if not is_postgres(app):
        folder = tempfile.mkdtemp(prefix=SQLITE_FOLDER_PREFIX)
        path = str(Path(folder, f"{name}.db"))
        database = type(app)(path, pragmas=sqlite_pragmas(app), timeout=app.timeout, **app.connect_params)
        try:
            yield Scratch(database, path, lambda: sqlite_snapshot(path))
        finally:
            database.close()
            shutil.rmtree(folder, ignore_errors=True)
        return
    assert server is not None, "a PostgreSQL scratch database is made on a server"
    project = Project(module, original)
    admin = server.connect(server.database)
    try:
        _make(admin, server, project, name)
        try:
            holder = server.connect(name)
            try:
                database = _like(app, name, server)
                try:
                    yield Scratch(database, name, lambda: postgres_snapshot(holder))
                finally:
                    database.close()
            finally:
                holder.close()
        finally:
            execute(admin, f"DROP DATABASE IF EXISTS {quote(name)} WITH (FORCE)")
    finally:
        admin.close()


def _make(admin: Any, server: PostgresServer, project: Project, name: str) -> None:
    """``CREATE DATABASE name``, marked as the project's; first drop one of the project's that nobody holds."""
    where = f"{server.host}:{server.port}"
    for found in find(admin, "d.datname = %s", (name,)):
        whose = project.whose(found)
        if whose is not None:
            raise ConfigurationError(
                f'The database "{name}" on {where} already exists and is not a scratch database of this project '
                f"({whose}), so the migration tests neither use nor drop it. Drop or rename it yourself if nothing "
                f"in it is needed, or give this run other names with {SUFFIX_HINT}."
            )
        if found.held_by is not None:
            raise ConfigurationError(
                f'The scratch database "{name}" on {where} is in use by another session (server process '
                f"{found.held_by}). Runs that share a server need distinct names: give each one {SUFFIX_HINT}."
            )
        execute(admin, f"DROP DATABASE {quote(name)}")  # a killed run's: nobody holds it
    try:
        execute(admin, f"CREATE DATABASE {quote(name)}")
    except psycopg2.errors.DuplicateDatabase:
        raise ConfigurationError(
            f'The scratch database "{name}" on {where} was just made by another session. Runs that share a server '
            f"need distinct names: give each one {SUFFIX_HINT}."
        ) from None
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex
    mark = project.mark(name, template=None, schema="", run=run)
    try:
        execute(admin, f"COMMENT ON DATABASE {quote(name)} IS %s", (mark,))
    except BaseException:
        execute(admin, f"DROP DATABASE IF EXISTS {quote(name)} WITH (FORCE)")
        raise


def _like(app: AioDatabase, name: str, server: PostgresServer) -> AioDatabase:
    """A new instance of ``app``'s class on database ``name`` of ``server``, with ``app``'s other settings."""
    own = {key: value for key, value in app.connect_params.items() if key not in WHERE}
    pool_only = {key: value for key, value in app.pool_params.items() if key not in app.connect_params}
    params = {**own, **server_params(server, app)}
    database: AioDatabase = type(app)(name, pool_params=pool_only, **params)
    return database
