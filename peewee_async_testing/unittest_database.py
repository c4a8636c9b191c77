"""use_test_database: the pytest plugin's test database, for a module of unittest tests, in one line.

The same server (a throwaway one of the database's kind, or the one ``$PEEWEE_ASYNC_TESTING_DSN`` names), the
same ``test_<name>`` database and the same tables as under the plugin (:mod:`~peewee_async_testing.testdb`);
undone by ``unittest.addModuleCleanup``.
"""

from __future__ import annotations

import os
import sys
import unittest
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import peewee

from ._database import resolve_database
from .cleanup import bound_models
from .exceptions import ConfigurationError
from .servers import from_environment, given_server, kind_of, make_server
from .state import SUFFIX_ENV
from .testdb import TestDatabase


def use_test_database(database: Any, models: Iterable[type[peewee.Model]] | None = None) -> Any:
    """Point ``database`` at a test database of its own for the rest of the module, and build its tables.

    Call it in ``setUpModule()``. It picks a server by the database's kind: a throwaway PostgreSQL server for
    ``peewee_async.PostgresqlDatabase`` and ``Psycopg3Database``, a throwaway MariaDB server for
    ``MySQLDatabase`` (or, for either, the server ``$PEEWEE_ASYNC_TESTING_DSN`` names, as under the pytest
    plugin; for MySQL ``$PEEWEE_ASYNC_TESTING_MYSQL_DSN`` first), and a file in a temporary folder for
    ``SqliteDatabase``. There it makes ``test_<name>`` (``<name>`` is the database's own name; for a database
    created with ``database=None``, the top package of its models' module; ``$PEEWEE_ASYNC_TESTING_DB_SUFFIX``
    is added, as under the plugin), points ``database`` at it and makes the tables of ``models`` (by default
    every model that uses ``database``). Your own database is never connected to.

    At the end of the module, ``unittest`` undoes it all, last step first: the test database is dropped, the
    server shut down, the temporary folder removed, and ``database`` set back as it was. If a step fails, what
    the earlier ones made is undone before the error is raised.

    Returns the server (a :class:`PostgresServer` or :class:`MariaDBServer`; None for SQLite).

    :raises DatabaseArgumentError: for what is not a peewee-async database.
    :raises TypeError: for models that are not model classes.
    :raises ConfigurationError: when called outside ``setUpModule()`` (or ``setUpClass()``); for a model of
        another database; for a DSN of the other kind of server, or one that names your database itself.

    Example::

        from peewee_async_testing import AioDatabaseTestCase, use_test_database

        def setUpModule():
            use_test_database(database)

        class TestUsers(AioDatabaseTestCase):
            database = database

            async def test_create(self):
                await User.aio_create(name="ada")
                assert await User.select().aio_count() == 1
    """
    _require_set_up()
    database = resolve_database(database, purpose="use_test_database", uninitialised=True)
    chosen = bound_models(database) if models is None else _bound(database, models)
    kind = kind_of(database)
    given = from_environment(kind) if kind is not None else None
    server = None
    if kind is not None:
        server = given_server(kind, *given, database) if given else make_server(kind)
    home = _home(chosen)
    suffix = os.environ.get(SUFFIX_ENV, "")
    with ExitStack() as undo:
        if server is not None:
            server.start()
            undo.callback(server.stop)
        from .mysqldb import MySQLTestDatabase

        test_database = (MySQLTestDatabase if kind == "mysql" else TestDatabase)(
            database, chosen, server=server, module=home, suffix=suffix
        )
        test_database.setup()
        undo.callback(test_database.teardown)
        unittest.addModuleCleanup(undo.pop_all().close)
    return server


def _bound(database: Any, models: Iterable[type[peewee.Model]]) -> list[type[peewee.Model]]:
    """``models``, once shown to be model classes bound to ``database``: the tables of another's would be made on
    that other database."""
    if isinstance(models, type):  # (a model class is iterable: list() of it would run a query)
        raise TypeError(f"use_test_database takes a list of models, but was given the class {models.__name__}.")
    models = list(models)
    wrong = [model for model in models if not (isinstance(model, type) and issubclass(model, peewee.Model))]
    if wrong:
        raise TypeError(f"use_test_database takes peewee model classes, but was given {wrong!r}.")
    own = bound_models(database)
    strangers = [model.__name__ for model in models if model not in own]
    if strangers:
        raise ConfigurationError(
            f"use_test_database was given models not bound to the database: {', '.join(strangers)}. Their tables "
            "would be made on the database they are bound to. Bind them to it, or leave models out to make the "
            "tables of every model bound to it."
        )
    return [model for model in own if model in models]  # parents first


def _require_set_up() -> None:
    """Refuse a call from anywhere but a ``setUpModule()`` (or a ``setUpClass()``): unittest runs the module
    clean-ups registered at import when the first module of the run ends, which would point the database back at
    your own for the tests of every later module."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name in ("setUpModule", "setUpClass"):
            return
        frame = frame.f_back  # type: ignore[assignment]
    raise ConfigurationError(
        "use_test_database() was called outside setUpModule(): unittest would undo it as soon as the first module "
        "of the run ends, and the tests after that would reach your own database. Call it in setUpModule()."
    )


def _home(models: list[type[peewee.Model]]) -> str:
    """The module of the models (the first by name): whose test database it is, in its mark, so that every test
    module of a project shares it; it names the test database of an uninitialised database object too."""
    names = sorted({model.__module__ for model in models}) or [str(sys._getframe(2).f_globals.get("__name__"))]
    name = names[0]
    if name == "__main__":  # a script: its file's name
        return Path(getattr(sys.modules["__main__"], "__file__", None) or name).stem
    return name
