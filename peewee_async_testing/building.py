"""How the test database's schema is built: the SQL files first, then the tables (from the models, the
migrations or the user's hook), then the seed data; and the fingerprint that says when to build it again."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import peewee
from peewee_async.databases import AioDatabase
from peewee_async.utils import sort_models

from . import __version__, seeds
from ._compat import create_table_sql
from ._database import is_mysql, is_postgres, sync_queries
from .exceptions import ConfigurationError
from .migrations import Migrations, migration_names
from .statements import mysql_statements

if TYPE_CHECKING:
    import pytest
    from pluggy import HookCaller

How = Literal["models", "migrations", "hook"]


@dataclass
class SchemaBuild:
    """How to build a test database: run ``sql`` files, then make the tables (of ``models``, with the
    ``migrations`` folder, or by the ``setup`` hook), then write the data of the ``seed`` hook."""

    models: Sequence[type[peewee.Model]]
    sql: Sequence[Path] = ()
    migrations: Path | None = None
    setup: HookCaller | None = None
    seed: HookCaller | None = None

    @classmethod
    def from_config(cls, config: pytest.Config, models: Sequence[type[peewee.Model]]) -> SchemaBuild:
        """The build the ini file and the options ask for (``--peewee-no-migrations``: the models' tables).

        :raises ConfigurationError: for a missing file or folder, a folder without migrations, or two ways of making
            the tables at once.
        """
        hook = config.hook
        setup: HookCaller | None = hook.pytest_peewee_async_setup_database
        seed: HookCaller = hook.pytest_peewee_async_seed_database
        folder = migrations_folder(config)
        if folder is not None and setup is not None and setup.get_hookimpls():
            where = ", ".join(sorted({impl.plugin_name for impl in setup.get_hookimpls()}))
            raise ConfigurationError(
                f"Both peewee_async_migrations and a pytest_peewee_async_setup_database hook ({where}) would build "
                "the test database: keep one (run the migrations from the hook, if both are needed)."
            )
        if not config.getoption("peewee_migrations"):
            folder, setup = None, None
        build = cls(
            models,
            sql_files(config),
            folder,
            setup if setup is not None and setup.get_hookimpls() else None,
            seed if seed.get_hookimpls() else None,
        )
        if folder is not None and not migration_names(folder):  # said before anything is made (or missing)
            raise ConfigurationError(
                f"The migrations folder {str(folder)!r} holds no migration (files named like 001_initial.py), so the "
                "test database would have no tables. Correct peewee_async_migrations, or remove it to build the "
                "tables from the models."
            )
        return build

    @property
    def how(self) -> How:
        """How the tables are made."""
        return "migrations" if self.migrations is not None else "hook" if self.setup is not None else "models"

    def fingerprint(self) -> str:
        """A hash of what the built database depends on: the SQL that makes the models' tables and indexes, the
        SQL files, the migration files, the hooks' source. It changes when the database would be built otherwise."""
        parts = [
            __version__.encode(),  # (what this library writes into it, such as the seed rows' restore, may change)
            self.how.encode(),
            *(sql.encode() for model in sort_models(self.models) for sql in create_table_sql(model)),
        ]
        for path in self.sql:
            parts += [str(path).encode(), path.read_bytes()]
        if self.migrations is not None:
            for name in migration_names(self.migrations):
                parts += [name.encode(), (self.migrations / f"{name}.py").read_bytes()]
        for hook in (self.setup, self.seed):
            for impl in hook.get_hookimpls() if hook is not None else ():
                parts.append(_source(impl.function).encode())
        return hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]

    def __call__(self, database: AioDatabase) -> None:
        """Build the schema (and the seed data) on ``database``, a fresh, empty test database."""
        run_sql_files(database, self.sql)
        if self.migrations is not None:
            Migrations(database, self.migrations).apply()
        elif self.setup is not None:
            with sync_queries(database):
                _call(self.setup, database, "pytest_peewee_async_setup_database")
        else:
            with sync_queries(database):
                database.create_tables(list(self.models), safe=False)
        if self.seed is not None:
            with sync_queries(database):
                _call(self.seed, database, "pytest_peewee_async_seed_database")
            seeds.keep(database)


def _source(function: Any) -> str:
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):  # defined where no source is kept: its name, at least
        return f"{getattr(function, '__module__', '')}.{getattr(function, '__qualname__', function)}"


def _call(hook: HookCaller, database: AioDatabase, name: str) -> None:
    """Call every implementation of ``hook``; those that are ``async def`` run on an event loop of their own, whose
    connections are closed before it is.

    :raises ConfigurationError: naming the hook and its line that raised (the session says no more than this).
    """
    try:
        results = hook(database=database)
        waiting = [result for result in results if inspect.isawaitable(result)]
        if waiting:
            run_on_own_loop(waiting, database)
    except Exception as error:
        said = str(error).removeprefix("peewee-async-testing: ").rstrip().rstrip(".")  # (one of this library's)
        raise ConfigurationError(
            f"{name} failed{_where(hook, error)}: {type(error).__name__}: {said}"
            + ". Correct the hook: the test database was not made."
        ) from None


def _where(hook: HookCaller, error: BaseException) -> str:
    """`` at file:line``: the line of ``hook``'s implementation that ``error`` came through (else nothing)."""
    codes = {getattr(impl.function, "__code__", None) for impl in hook.get_hookimpls()}
    at, tb = "", error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code in codes:
            at = f" at {tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return at


def run_on_own_loop(waiting: Sequence[Awaitable[object]], database: AioDatabase) -> None:
    """Await ``waiting`` in order on an event loop of its own, and close ``database``'s pool on it before the loop."""

    async def run() -> None:
        try:
            for awaitable in waiting:
                await awaitable
        finally:
            await database.aio_close()

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(run())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


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


def run_sql_files(database: AioDatabase, files: Sequence[Path]) -> None:
    """Run each of ``files`` on ``database`` (through its synchronous connection), each as one script.

    :raises ConfigurationError: naming the file that failed, and the server's error.
    """
    with sync_queries(database):
        for path in files:
            script = path.read_text(encoding="utf-8")
            try:
                if is_postgres(database):
                    database.execute_sql(script)
                elif is_mysql(database):  # PyMySQL runs one statement per execute()
                    for statement in mysql_statements(script):
                        database.execute_sql(statement)
                else:  # sqlite3 runs one statement per execute(): its executescript() runs them all
                    database.connection().executescript(script)
            except Exception as error:
                raise ConfigurationError(
                    f"The SQL file {path} failed on the test database: {type(error).__name__}: {error}".rstrip()
                ) from None
