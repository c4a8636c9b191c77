"""What the plugin keeps of a session, shared by its hooks and its fixtures.

Its stash keys, what pytest-xdist's nodes hand each other, the server's options from the ini file, and what
a configured database turned out to be.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .background_start import BackgroundStart
    from .gate import Gate
    from .testdb import TestDatabase

#: The session's test database (set by the ``peewee_database`` fixture).
TEST_DATABASE: pytest.StashKey[TestDatabase] = pytest.StashKey()
#: The gate on the configured database object, installed as pytest configures.
GATE: pytest.StashKey[Gate] = pytest.StashKey()
#: What ``peewee_async_database`` names, as named (a proxy stays a proxy), loaded as pytest configures.
CONFIGURED: pytest.StashKey[Any] = pytest.StashKey()
#: The models that the configured modules define: each must stay bound to the configured database.
CONFIGURED_MODELS: pytest.StashKey[list[Any]] = pytest.StashKey()
#: The throwaway server started as the session starts.
SERVER_START: pytest.StashKey[BackgroundStart] = pytest.StashKey()
#: The xdist controller's: what the workers told of their test databases.
WORKER_DATABASES: pytest.StashKey[list[dict[str, Any]]] = pytest.StashKey()
WORKER_DSN = "peewee_async_testing_dsn"  # how an xdist controller hands its server to the workers
WORKER_DATABASE = "peewee_async_testing_database"  # how an xdist worker tells the controller of its test database
SUFFIX_ENV = "PEEWEE_ASYNC_TESTING_DB_SUFFIX"


def server_options(config: pytest.Config) -> dict[str, Any]:
    """The throwaway server's locale and settings from the ini file; None where it sets none (the server then
    takes the environment's, else its defaults)."""
    from .settings import parse_settings

    lines = config.getini("peewee_async_server_settings")
    return {
        "locale": config.getini("peewee_async_server_locale") or None,
        "settings": parse_settings(lines, "peewee_async_server_settings") if lines else None,
    }


def describe(test_database: TestDatabase) -> dict[str, Any]:
    """What the closing line tells of a test database: its name, where it is, how it was made and removed,
    the stale databases dropped first, and those it met there and kept, with why."""
    server = test_database.server
    fleeting = None  # where nothing outlives the run
    if server is None:
        where, end, fleeting = "(SQLite)", "removed", "SQLite"
    elif server.attached:
        where, end = f"on {server.host}:{server.port}", "kept" if test_database.reuse else "dropped"
    else:
        where, end, fleeting = f"on {server.host}:{server.port}", "removed with the server", "a throwaway server"
    how = f"{'reused' if test_database.reused else 'created'}, {end}"
    if test_database.reuse and fleeting:
        how += f"; --peewee-reuse-db has no effect on {fleeting}"
    return {
        "name": test_database.name,
        "where": where,
        "how": how,
        "stale": list(test_database.dropped_stale),
        "kept": list(test_database.kept),
    }
