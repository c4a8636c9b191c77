"""The inner project that the plugin's tests run with pytester: its ini file, and the app beside it.

The app's database object points at a real database, ``app``, holding a sentinel row: the plugin must make
``test_app`` next to it and never touch ``app`` itself (the ``app_database`` fixture checks).
"""

from __future__ import annotations

import pytest

INI = """
[pytest]
asyncio_mode = {mode}
asyncio_default_fixture_loop_scope = {loop}
asyncio_default_test_loop_scope = {loop}
filterwarnings = error
addopts = --strict-markers -p no:cacheprovider
pythonpath = .
{extra}
"""


APP_DB = """
import os

import peewee_async

database = peewee_async.PostgresqlDatabase(
    "app", host=os.environ["INNER_HOST"], port=int(os.environ["INNER_PORT"]), user="postgres"
)
"""


APP_MODELS = """
import peewee
import peewee_async

from app.db import database


class Note(peewee_async.AioModel):
    text = peewee.CharField(unique=True)

    class Meta:
        database = database


class Comment(peewee_async.AioModel):
    note = peewee.ForeignKeyField(Note, backref="comments")

    class Meta:
        database = database
"""


CONFIGURED = """
peewee_async_database = app.db:database
peewee_async_models = app.models
"""


def make_ini(pytester: pytest.Pytester, extra: str = CONFIGURED, *, loop: str = "session", mode: str = "auto") -> None:
    pytester.makeini(INI.format(extra=extra, loop=loop, mode=mode))


ISOLATED_TESTS = """
import pytest
from app.models import Note

async def test_one():
    await Note.aio_create(text="same")
    assert await Note.select().aio_count() == 1

async def test_two_sees_nothing_of_one():
    assert await Note.select().aio_count() == 0
    await Note.aio_create(text="same")  # unique: fails if test_one's row survived

async def test_a_crash():
    await Note.aio_create(text="crash")
    raise RuntimeError("boom")

async def test_the_crash_left_nothing():
    assert await Note.select().aio_count() == 0
"""


#: A module-scoped fixture that commits a note outside every test transaction (and deletes it at the module's end),
#: for the module's tests to see: ``committed``.
COMMITTED_NOTE = """
import pytest
from app.db import database
from app.models import Note

@pytest.fixture(scope="module")
async def committed():
    async with database.aio_atomic():
        await Note.aio_create(text="committed")
    yield
    await Note.delete().aio_execute()
"""


#: The app of the safety tests: its database is ``shop`` on the production stand-in (tests/production.py).
SHOP_DB = """
import os

import peewee_async

database = peewee_async.PostgresqlDatabase(
    "shop", host=os.environ["PROD_HOST"], port=int(os.environ["PROD_PORT"]), user="app",
    password=os.environ["PROD_PASSWORD"],
)
"""

SHOP_MODELS = """
import peewee
import peewee_async

from app.db import database


class Item(peewee_async.AioModel):
    name = peewee.CharField(unique=True)

    class Meta:
        database = database
        table_name = "item"
"""

SHOP = """
peewee_async_database = app.db:database
peewee_async_models = app.models
"""


#: The app of the MySQL project: its real database ``app`` on the run's MariaDB server (tests/plugin/test_mysql.py).
MYSQL_APP_DB = """
import os

import peewee_async

database = peewee_async.MySQLDatabase(
    "app", host=os.environ["INNER_MYSQL_HOST"], port=int(os.environ["INNER_MYSQL_PORT"]), user="root"
)
"""
