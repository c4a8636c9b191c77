"""peewee-migrate's migrations run on a test database: all at once, or one step up or down, each failure named.

peewee-migrate (``pip install "peewee-migrate>=1.15,<2"``: 1.15 is the only release that installs beside
peewee-async 2.1) is synchronous, so every step runs with peewee's synchronous API allowed on the database.
Each step gets a fresh router: after a failure, peewee-migrate's router keeps the operations that did not run
and would run them again. Its history is kept by a private copy of its history model, so that routers on two
databases never read each other's table, and the model classes the migration files declare are unbound from
the database afterwards, so that nothing mistakes them for the app's models.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import peewee
from peewee_async.databases import AioDatabase

from ._database import sync_queries
from .cleanup import model_classes
from .exceptions import ConfigurationError, MigrationError, PeeweeAsyncTestingError

#: The files peewee-migrate runs, in name order: ``001_initial.py``...
MIGRATION_FILE = re.compile(r"^\d{3}_[^.]+\.py$")
#: The table of applied migrations peewee-migrate keeps (its default name).
HISTORY_TABLE = "migratehistory"

T = TypeVar("T")


def migration_names(folder: Path) -> list[str]:
    """The migrations in ``folder`` (file names without ``.py``), in the order they run.

    :raises ConfigurationError: if ``folder`` is not a folder (peewee-migrate would make it, and run nothing).
    """
    if not folder.is_dir():
        raise ConfigurationError(
            f"The migrations folder {str(folder)!r} does not exist (peewee_async_migrations in the ini file, "
            "relative to the ini file's folder). Correct the path, or remove the setting to build the tables "
            "from the models."
        )
    return sorted(path.stem for path in folder.iterdir() if MIGRATION_FILE.match(path.name))


class Migrations:
    """The peewee-migrate migrations of ``folder``, on ``database`` (a peewee-async database, pointed at a
    test database)."""

    def __init__(self, database: AioDatabase, folder: Path) -> None:
        self.database = database
        self.folder = folder
        self.names = migration_names(folder)

    def applied(self) -> list[str]:
        """The migrations recorded as applied, in the order they were."""
        return self._step(lambda router: list(router.done), "reading the applied migrations")

    def apply(self, name: str | None = None) -> list[str]:
        """Apply the migrations not applied yet, in order (up to and including ``name``); return their names."""
        try:
            return self._step(lambda router: list(router.run(name)), "migrating")
        except MigrationError as error:
            applied = set(self.applied())
            failed = next((one for one in self.names if one not in applied), "?")
            raise MigrationError(str(error).replace("failed migrating", f"failed applying {failed}", 1)) from None

    def rollback(self) -> str:
        """Roll back the last applied migration; return its name.

        :raises ConfigurationError: if none is applied.
        """
        applied = self.applied()
        if not applied:
            raise ConfigurationError(f"No migration of {self.folder} is applied: there is nothing to roll back.")
        self._step(lambda router: router.rollback(), f"rolling back {applied[-1]}")
        return applied[-1]

    def _step(self, step: Callable[[Any], T], doing: str) -> T:
        router = _router_class()(self.database, self.folder)
        try:
            with sync_queries(self.database), _unbinding_new_models(self.database):
                return step(router)
        except Exception as error:
            if isinstance(error, PeeweeAsyncTestingError):
                raise
            raise MigrationError(f"peewee-migrate failed {doing} ({self.folder}): {_chain(error)}") from error
        finally:
            router.unbind()


def _chain(error: BaseException) -> str:
    """``error``, and the errors it was raised while handling: on SQLite, peewee-migrate's own rollback error
    ("cannot rollback - no transaction is active") hides the migration's."""
    said, last = [f"{type(error).__name__}: {str(error).strip()}"], str(error).strip()
    cause = error.__cause__ or error.__context__
    while cause is not None and len(said) < 5:
        text = str(cause).strip()  # (psycopg2's messages end with a new line)
        if text not in last:  # peewee raises its own copy of the driver's error
            said.append(f"raised while handling {type(cause).__name__}: {text}")
        last, cause = text, cause.__cause__ or cause.__context__
    return "; ".join(said)


@contextmanager
def _unbinding_new_models(database: AioDatabase) -> Iterator[None]:
    """Unbind from ``database`` the model classes bound to it during the block that no module defines (those
    of the migration files, which are run, not imported)."""
    before = set(_bound_to(database))
    try:
        yield
    finally:
        for model in _bound_to(database):
            module = sys.modules.get(model.__module__)
            if model not in before and getattr(module, model.__name__, None) is not model:
                model._meta.database = None


def _bound_to(database: AioDatabase) -> Iterator[type[peewee.Model]]:
    return (model for model in model_classes() if model._meta.database is database)


def _router_class() -> type[Any]:
    """peewee-migrate's ``Router`` with a history model of its own (its ``MigrateHistory`` is one class that
    every router rebinds); imported here, so that the library needs peewee-migrate only for migrations."""
    try:
        from peewee_migrate import Router
        from peewee_migrate.models import MigrateHistory
    except ImportError:
        raise ConfigurationError(
            "peewee_async_migrations is set, but peewee-migrate is not installed: "
            'pip install "peewee-async-testing[migrate]" (peewee-migrate>=1.15,<2).'
        ) from None

    class OwnHistoryRouter(Router):
        @cached_property
        def model(self) -> type[MigrateHistory]:
            meta = type("Meta", (), {"database": self.database, "table_name": HISTORY_TABLE})
            attributes = {"Meta": meta, "__module__": __name__}
            model: type[MigrateHistory] = type("MigrateHistory", (MigrateHistory,), attributes)
            model.create_table(safe=True)
            return model

        def unbind(self) -> None:
            if "model" in self.__dict__:
                self.model._meta.database = None

    return OwnHistoryRouter
