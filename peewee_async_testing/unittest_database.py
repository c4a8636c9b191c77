"""use_test_database: the pytest plugin's test database, for a module of unittest tests, in one line.

The same server (a throwaway one of the database's kind, or the one ``$PEEWEE_ASYNC_TESTING_DSN`` names), the
same ``test_<name>`` database and the same tables as under the plugin (:mod:`~peewee_async_testing.testdb`);
undone by ``unittest.addModuleCleanup``.
"""

from __future__ import annotations

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
from .servers import check, from_environment, kind_of, make_server
from .testdb import TestDatabase


def use_test_database(database: Any, models: Iterable[type[peewee.Model]] | None = None) -> Any:
    """Point ``database`` at a test database of its own for the rest of the module, and build its tables.

    Call it in ``setUpModule()``. It picks a server by the database's kind: a throwaway PostgreSQL server for
    ``peewee_async.PostgresqlDatabase`` and ``Psycopg3Database``, a throwaway MariaDB server for
    ``MySQLDatabase`` (or, for either, the server ``$PEEWEE_ASYNC_TESTING_DSN`` names, as under the pytest
    plugin; for MySQL ``$PEEWEE_ASYNC_TESTING_MYSQL_DSN`` first), and a file in a temporary folder for
    ``SqliteDatabase``. There it makes ``test_<name>`` (``<name>`` is the database's own name; for a database
    created with ``database=None``, the top package of the calling module), points ``database`` at it and
    makes the tables of ``models`` (by default every model that uses ``database``). Your own database is
    never connected to.

    At the end of the module, ``unittest`` undoes it all, last step first: the test database is dropped, the
    server shut down, the temporary folder removed, and ``database`` set back as it was. If a step fails, what
    the earlier ones made is undone before the error is raised.

    Returns the server (a :class:`PostgresServer` or :class:`MariaDBServer`; None for SQLite).

    :raises DatabaseArgumentError: for what is not a peewee-async database.
    :raises TypeError: for models that are not model classes.
    :raises ConfigurationError: for a model of another database, or a DSN of the other kind of server.

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
    database = resolve_database(database, purpose="use_test_database", uninitialised=True)
    chosen = bound_models(database) if models is None else _bound(database, models)
    kind = kind_of(database)
    given = from_environment(kind) if kind is not None else None
    if kind is not None and given is not None:
        check(kind, given[0], given[1], None)
    module = _caller_module()
    with ExitStack() as undo:
        server = None
        if kind is not None:
            dsn, origin = given or (None, None)
            server = make_server(kind, dsn=dsn, origin=origin)
            server.start()
            undo.callback(server.stop)
        if kind == "mysql":
            from .mysqldb import MySQLTestDatabase

            test_database: TestDatabase = MySQLTestDatabase(database, chosen, server=server, module=module)
        else:
            test_database = TestDatabase(database, chosen, server=server, module=module)
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


def _caller_module() -> str:
    """The name of the module that called :func:`use_test_database` (a script's file name for ``__main__``)."""
    caller = sys._getframe(2).f_globals
    name = str(caller.get("__name__") or "")
    return Path(caller.get("__file__") or name).stem if name == "__main__" else name
