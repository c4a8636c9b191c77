"""Fast, trustworthy test isolation for peewee-async: a rolled-back transaction per test.

Example::

    from peewee_async_testing import TransactionTestCase

    async with TransactionTestCase(database):
        await User.aio_create(name="ada")   # gone after the block

The names are imported on first use, so that loading the pytest plugin (which lives in this
package) does not import peewee, peewee-async and their drivers before a test needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Every public name, and the module that defines it.
_EXPORTS = {
    "AbortedTransactionError": "exceptions",
    "AioDatabaseTestCase": "testcase",
    "CapturedQueries": "queries",
    "CapturedQuery": "queries",
    "ConfigurationError": "exceptions",
    "DatabaseAccessError": "exceptions",
    "DatabaseArgumentError": "exceptions",
    "FactoryState": "factories",
    "MariaDBServer": "mariadb",
    "MigrationError": "exceptions",
    "ModelFactory": "factories",
    "PeeweeAsyncTestingError": "exceptions",
    "PostgresServer": "server",
    "ServerError": "exceptions",
    "TransactionControlError": "exceptions",
    "TransactionError": "exceptions",
    "TransactionTestCase": "transaction",
    "TurnTimeoutError": "exceptions",
    "aio_clear_tables": "cleanup",
    "assert_all_models_registered": "schema",
    "assert_database_count": "assertions",
    "assert_database_has": "assertions",
    "assert_database_missing": "assertions",
    "assert_max_num_queries": "queries",
    "assert_models_match_schema": "schema",
    "assert_num_queries": "queries",
    "assert_queries_match": "queries",
    "bound_models": "cleanup",
    "capture_queries": "queries",
    "clear_tables": "cleanup",
    "use_test_database": "unittest_database",
}

__all__ = [
    "AbortedTransactionError",
    "AioDatabaseTestCase",
    "CapturedQueries",
    "CapturedQuery",
    "ConfigurationError",
    "DatabaseAccessError",
    "DatabaseArgumentError",
    "FactoryState",
    "MariaDBServer",
    "MigrationError",
    "ModelFactory",
    "PeeweeAsyncTestingError",
    "PostgresServer",
    "ServerError",
    "TransactionControlError",
    "TransactionError",
    "TransactionTestCase",
    "TurnTimeoutError",
    "aio_clear_tables",
    "assert_all_models_registered",
    "assert_database_count",
    "assert_database_has",
    "assert_database_missing",
    "assert_max_num_queries",
    "assert_models_match_schema",
    "assert_num_queries",
    "assert_queries_match",
    "bound_models",
    "capture_queries",
    "clear_tables",
    "use_test_database",
]

if TYPE_CHECKING:
    from .assertions import assert_database_count, assert_database_has, assert_database_missing
    from .cleanup import aio_clear_tables, bound_models, clear_tables
    from .exceptions import (
        AbortedTransactionError,
        ConfigurationError,
        DatabaseAccessError,
        DatabaseArgumentError,
        MigrationError,
        PeeweeAsyncTestingError,
        ServerError,
        TransactionControlError,
        TransactionError,
        TurnTimeoutError,
    )
    from .factories import FactoryState, ModelFactory
    from .mariadb import MariaDBServer
    from .queries import (
        CapturedQueries,
        CapturedQuery,
        assert_max_num_queries,
        assert_num_queries,
        assert_queries_match,
        capture_queries,
    )
    from .schema import assert_all_models_registered, assert_models_match_schema
    from .server import PostgresServer
    from .testcase import AioDatabaseTestCase
    from .transaction import TransactionTestCase
    from .unittest_database import use_test_database


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
