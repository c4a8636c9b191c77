"""The plugin's hooks, which a ``conftest.py`` implements to build the test database its own way."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookspec
def pytest_peewee_async_setup_database(database: Any) -> object:
    """Build the schema of the fresh, empty test database, instead of making the models' tables (or running
    ``peewee_async_migrations``): with plain SQL files, yoyo, alembic...

    Called once per built database (a session's, or under pytest-xdist the template its workers copy), after
    the ``peewee_async_sql`` files. ``database`` is the app's database object, pointed at the test database,
    with peewee's synchronous API allowed (``database.execute_sql(...)``); ``database.database`` and
    ``database.connect_params`` say where it is, for a tool that connects by itself. Every implementation is
    called. What it commits is what every test starts from.
    """


@pytest.hookspec
def pytest_peewee_async_seed_database(database: Any) -> object:
    """Write the reference data every test expects, once, into the built test database (under pytest-xdist,
    into the template its workers copy, so each starts with it at no cost).

    Called after the schema is built, with peewee's synchronous API allowed on ``database``; may be an
    ``async def`` (it runs on an event loop of its own). Every implementation is called. Tests see the data;
    a test transaction undoes their changes to it, and after a test isolated by clearing the tables
    (``clear_tables``), the rows it wrote are restored.
    """
