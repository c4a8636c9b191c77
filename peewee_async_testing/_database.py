"""Checks at the boundary: turn what the user handed over into a usable peewee-async database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import peewee
from peewee_async.databases import AioDatabase

from ._compat import SYNC_ALLOWED
from .exceptions import ConfigurationError
from .patches import set_attribute


def resolve_database(database: Any, *, purpose: str, uninitialised: bool = False) -> AioDatabase:
    """Return the peewee-async database behind ``database`` (unwrapping a :class:`peewee.DatabaseProxy`).

    ``uninitialised=True`` accepts a database created with ``database=None`` (the plugin initialises it).

    :raises ConfigurationError: naming what was given and what ``purpose`` needs instead.
    """
    if isinstance(database, peewee.DatabaseProxy):
        if database.obj is None:
            raise ConfigurationError(
                f"{purpose} was given a peewee.DatabaseProxy that is not initialised yet. "
                "Call `proxy.initialize(database)` before the tests run."
            )
        database = database.obj
    if not isinstance(database, AioDatabase):
        raise ConfigurationError(
            f"{purpose} needs a peewee-async database (peewee_async.PostgresqlDatabase, Psycopg3Database "
            f"or SqliteDatabase), but was given {database!r}. "
            "Create the database with peewee_async instead of plain peewee."
        )
    if database.deferred and not uninitialised:
        raise ConfigurationError(
            f"{purpose} was given a database that is not initialised (it was created with database=None). "
            "Call `database.init(name, ...)` before the tests run."
        )
    return database


def is_postgres(database: AioDatabase) -> bool:
    """Whether ``database`` talks to PostgreSQL (aiopg or psycopg 3)."""
    return isinstance(database, peewee.PostgresqlDatabase)


@contextmanager
def sync_queries(database: AioDatabase) -> Iterator[None]:
    """Allow peewee's synchronous API on ``database`` for the block; a sync connection it opens, it closes."""
    was_closed = database.is_closed()
    undo = set_attribute(database, SYNC_ALLOWED, True)
    try:
        yield
    finally:
        undo()
        if was_closed:
            database.close()
