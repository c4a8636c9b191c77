"""Checks at the boundary: turn what the user handed over into a usable peewee-async database."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import peewee
from peewee_async.databases import AioDatabase

from ._compat import SYNC_ALLOWED
from .exceptions import ConfigurationError, DatabaseArgumentError
from .patches import set_attribute

#: What to pass, said in every refusal of a database argument.
SUPPORTED = (
    "a peewee-async database (peewee_async.PostgresqlDatabase, Psycopg3Database, MySQLDatabase or SqliteDatabase)"
)


def resolve_database(database: Any, *, purpose: str, uninitialised: bool = False) -> AioDatabase:
    """Return the peewee-async database behind ``database`` (unwrapping a :class:`peewee.DatabaseProxy`).

    Only PostgreSQL (aiopg, psycopg 3), MySQL/MariaDB (aiomysql) and SQLite are supported: any other backend is
    refused here, before anything connects. ``uninitialised=True`` accepts a database created with
    ``database=None`` (the plugin initialises it).

    :raises DatabaseArgumentError: naming what was given (never its contents) and what ``purpose`` needs instead.
    :raises ConfigurationError: for a database that is not initialised, unless ``uninitialised``.
    """
    through = ""
    if isinstance(database, peewee.DatabaseProxy):
        if database.obj is None:
            raise DatabaseArgumentError(
                f"{purpose} was given a peewee.DatabaseProxy that is not initialised yet. "
                f"Call `proxy.initialize(database)` with {SUPPORTED} before the tests run."
            )
        database, through = database.obj, " through a peewee.DatabaseProxy"
    if not isinstance(database, AioDatabase):
        raise DatabaseArgumentError(
            f"{purpose} needs {SUPPORTED}, but was given {_described(database)}{through}. {_what_to_do(database)}"
        )
    if not is_postgres(database) and not is_mysql(database) and not is_sqlite(database):
        raise DatabaseArgumentError(
            f"{purpose} supports PostgreSQL (aiopg, psycopg 3), MySQL (aiomysql) and SQLite databases, and was given "
            f"{_described(database)}{through}, whose transactions and clean-up it does not know. "
            f"Run the tests on {SUPPORTED}."
        )
    if database.deferred and not uninitialised:
        raise ConfigurationError(
            f"{purpose} was given a database that is not initialised (it was created with database=None). "
            "Call `database.init(name, ...)` before the tests run."
        )
    return database


def _name(cls: type) -> str:
    """``cls``'s dotted name, by its package's public name when the package exports it (peewee_async.X)."""
    module = cls.__module__
    package = sys.modules.get(module.partition(".")[0])
    if getattr(package, cls.__qualname__, None) is cls:
        module = module.partition(".")[0]
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _described(value: Any) -> str:
    """What ``value`` is, without its contents (which may hold a password)."""
    if value is None:
        return "None"
    if inspect.ismodule(value):
        return f"the module {value.__name__}"
    if isinstance(value, type):
        return f"the class {_name(value)}"
    return f"a {_name(type(value))}"


def _what_to_do(value: Any) -> str:
    if inspect.ismodule(value):
        return "Pass the database object it holds (such as `myapp.db.database`), not the module."
    if isinstance(value, type) and issubclass(value, peewee.Model):
        return f"Pass the database the model is bound to, `{value.__name__}._meta.database`, not a model."
    if isinstance(value, type):
        return f'Pass an instance, `{value.__name__}("name", ...)`, not the class.'
    if isinstance(value, peewee.Database):
        return "Create the database with peewee_async instead of plain peewee."
    return "Pass the database object your models are bound to."


def is_postgres(database: AioDatabase) -> bool:
    """Whether ``database`` talks to PostgreSQL (aiopg or psycopg 3)."""
    return isinstance(database, peewee.PostgresqlDatabase)


def is_mysql(database: AioDatabase) -> bool:
    """Whether ``database`` talks to MySQL or MariaDB (aiomysql)."""
    return isinstance(database, peewee.MySQLDatabase)


def is_sqlite(database: AioDatabase) -> bool:
    """Whether ``database`` is an SQLite database (aiosqlite)."""
    return isinstance(database, peewee.SqliteDatabase)


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
