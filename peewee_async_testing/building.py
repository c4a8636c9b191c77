"""How the test database's schema is built: the SQL files first, then the tables (from the models, the
migrations or the user's hook), then the seed data; and the fingerprint that says when to build it again."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from peewee_async.databases import AioDatabase

from ._database import is_postgres, sync_queries
from .exceptions import ConfigurationError

if TYPE_CHECKING:
    import pytest


def _ini_folder(config: pytest.Config) -> Path:
    """Where the ini file's paths are relative to: its folder (else pytest's root folder)."""
    return config.inipath.parent if config.inipath is not None else config.rootpath


def migrations_folder(config: pytest.Config) -> Path | None:
    """The ``peewee_async_migrations`` folder (absolute), or None when unset."""
    value = str(config.getini("peewee_async_migrations")).strip()
    return (_ini_folder(config) / value).resolve() if value else None


def sql_files(config: pytest.Config) -> list[Path]:
    """The ``peewee_async_sql`` files (absolute), in the order given.

    :raises ConfigurationError: for one that is not a file.
    """
    files = [(_ini_folder(config) / value).resolve() for value in config.getini("peewee_async_sql")]
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        raise ConfigurationError(
            f"peewee_async_sql names files that do not exist: {', '.join(missing)} (paths are relative to the ini "
            "file's folder). Correct them, or remove them from the setting."
        )
    return files


def run_sql_files(database: AioDatabase, files: list[Path]) -> None:
    """Run each of ``files`` on ``database`` (through its synchronous connection), each as one script.

    :raises ConfigurationError: naming the file that failed, and the server's error.
    """
    with sync_queries(database):
        for path in files:
            script = path.read_text(encoding="utf-8")
            try:
                if is_postgres(database):
                    database.execute_sql(script)
                else:  # sqlite3 runs one statement per execute(): its executescript() runs them all
                    database.connection().executescript(script)
            except Exception as error:
                raise ConfigurationError(
                    f"The SQL file {path} failed on the test database: {type(error).__name__}: {error}".rstrip()
                ) from None
