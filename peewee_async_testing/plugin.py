"""The pytest plugin, registered through the ``pytest11`` entry point ``peewee_async_testing``.

It only defines fixtures; nothing runs until a test asks for one of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from .cleanup import clear_tables as clear_database_tables
from .transaction import TransactionTestCase

NOT_CONFIGURED = (
    "The {fixture} fixture needs a peewee-async database, but none is configured. "
    "Override the `peewee_database` fixture in your conftest.py to return your database object, e.g.\n\n"
    "    @pytest.fixture(scope='session')\n"
    "    def peewee_database():\n"
    "        return myapp.db.database\n"
)


@pytest.fixture
def peewee_database(request: pytest.FixtureRequest) -> Any:
    """The peewee-async database that ``in_transaction`` and ``clear_tables`` isolate.

    Override it in ``conftest.py`` (any scope) to return your database object; its tables must exist.
    Not overridden, it fails the test with instructions.
    """
    fixture = next((name for name in ("in_transaction", "clear_tables") if name in request.fixturenames), None)
    pytest.fail(NOT_CONFIGURED.format(fixture=fixture or "peewee_database"), pytrace=False)


@pytest_asyncio.fixture
async def in_transaction(request: pytest.FixtureRequest, peewee_database: Any) -> AsyncIterator[Any]:
    """Run the test inside a :class:`~peewee_async_testing.TransactionTestCase`, rolled back afterwards.

    Yields the active case (``case.connection`` is the test's connection). Steps aside, yielding
    ``None``, when the test also asks for ``clear_tables``. Make it autouse in ``conftest.py``::

        @pytest.fixture(autouse=True)
        def _isolate(in_transaction):
            pass
    """
    if "clear_tables" in request.fixturenames:
        yield None
        return
    async with TransactionTestCase(peewee_database) as case:
        yield case


@pytest.fixture
def clear_tables(peewee_database: Any) -> Iterator[None]:
    """Empty every table of the database's models after the test (one ``TRUNCATE`` on PostgreSQL).

    For tests whose queries cannot run inside the test transaction: synchronous peewee queries,
    other processes, code that commits. Works for sync and async tests alike.
    """
    yield
    clear_database_tables(peewee_database)
