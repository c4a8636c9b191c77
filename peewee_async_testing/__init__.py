"""Fast, trustworthy test isolation for peewee-async: a rolled-back transaction per test.

Example::

    from peewee_async_testing import TransactionTestCase

    async with TransactionTestCase(database):
        await User.aio_create(name="ada")   # gone after the block
"""

from __future__ import annotations

from .cleanup import aio_clear_tables, bound_models, clear_tables
from .exceptions import ConfigurationError, PeeweeAsyncTestingError, ServerError, TransactionError
from .server import PostgresServer
from .transaction import TransactionTestCase

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "PeeweeAsyncTestingError",
    "PostgresServer",
    "ServerError",
    "TransactionError",
    "TransactionTestCase",
    "aio_clear_tables",
    "bound_models",
    "clear_tables",
]
