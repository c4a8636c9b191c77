"""The ready-made migration tests: four test items the plugin adds to the session, each on a scratch database.

Switched on by ``peewee_async_migration_tests = true`` in the ini file or by ``--peewee-migration-tests``, with
``peewee_async_migrations`` naming the peewee-migrate folder:

- ``test_peewee_migrations_apply``: every migration applies, one at a time in order, on an empty database;
- ``test_peewee_migrations_up_down``: every migration, rolled back right after it is applied, leaves the schema
  as it found it (and applies again after);
- ``test_peewee_migrations_match_models``: after every migration, the schema is the one the models declare;
- ``test_peewee_models_registered``: every model of the app's package is among the plugin's models.

The items belong to the ini file (their node ids are ``pytest.ini::test_peewee_migrations_apply``...): they are
collected with the ini file's folder, and in every run that names no path on the command line (with
``testpaths`` too), never when the paths named leave the ini file out. They are marked ``peewee_migrations``, and
run first.

"The plugin's models" are those bound to the configured database once pytest is configured: what the ini file's
modules (``peewee_async_database``'s, ``peewee_async_models``) and the first ``conftest.py`` files import, and
not what test modules import later (a model of the tests' own is no model of the app).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from pathlib import Path

import peewee
import pytest

from .building import migrations_folder, run_on_own_loop, run_sql_files, sql_files
from .exceptions import ConfigurationError, MigrationError, PeeweeAsyncTestingError
from .migrations import Migrations, migration_names
from .schema_snapshot import difference
from .scratch import Scratch, scratch_database
from .state import GATE, SUFFIX_ENV

#: The marker every item carries: ``-m peewee_migrations`` selects them, ``-m "not peewee_migrations"`` leaves them out.
MARKER = "peewee_migrations"
#: The models bound to the configured database as pytest was configured (see the module's docstring).
REGISTERED_MODELS = pytest.StashKey[list[type[peewee.Model]]]()
#: The app's own database name, before the plugin points its object at a test database.
ORIGINAL_NAME = pytest.StashKey[str | None]()
#: The ini setting naming the package whose models must all be registered.
PACKAGE_INI = "peewee_async_models_package"


def switch_on(config: pytest.Config) -> _Collecting:
    """Check what the tests need, note the plugin's models; return the hooks that collect the tests (for the plugin
    to register).

    :raises pytest.UsageError: without a configured database or a migrations folder, saying what to set.
    """
    asked = "--peewee-migration-tests" if config.getoption("peewee_migration_tests") else "peewee_async_migration_tests"
    folder = migrations_folder(config)
    if config.inipath is None:
        raise pytest.UsageError(
            f"{asked} asks for the ready-made migration tests, which belong to the ini file, and this run has none: "
            "put the settings in pytest.ini (or pyproject.toml, tox.ini, setup.cfg) rather than in -o options."
        )
    if not config.getini("peewee_async_database") or folder is None:
        missing = "peewee_async_migrations" if config.getini("peewee_async_database") else "peewee_async_database"
        raise pytest.UsageError(
            f"{asked} asks for the ready-made migration tests, but {missing} is not set in the ini file: they need "
            "the app's database (peewee_async_database = myapp.db:database) and the folder of its peewee-migrate "
            "migrations (peewee_async_migrations = myapp/migrations, relative to the ini file)."
        )
    try:
        migration_names(folder)
    except ConfigurationError as error:
        raise pytest.UsageError(str(error)) from None
    from .cleanup import bound_models

    config.stash[REGISTERED_MODELS] = bound_models(config.stash[GATE].database)
    config.stash[ORIGINAL_NAME] = config.stash[GATE].database.database
    config.addinivalue_line("markers", f"{MARKER}: the ready-made migration tests of peewee-async-testing.")
    return _Collecting(config, config.inipath)


class _Collecting:
    """The hooks that collect the tests, as a collector of the ini file ``anchor``."""

    def __init__(self, config: pytest.Config, anchor: Path) -> None:
        self.anchor = anchor.resolve()
        self.added_to_session = config.args_source != pytest.Config.ArgsSource.ARGS and not any(
            self._under(Path(config.invocation_params.dir, arg.split("::")[0]).resolve()) for arg in config.args
        )

    def _under(self, path: Path) -> bool:
        return path == self.anchor or path in self.anchor.parents

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        if file_path.resolve() != self.anchor or self.added_to_session:
            return None
        collector: MigrationTests = MigrationTests.from_parent(parent, path=file_path)
        return collector

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(
        self, collector: pytest.Collector
    ) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
        """A run that names no path (``testpaths``, or the current folder) gets the tests even when it does
        not collect the ini file's folder."""
        report = yield
        if isinstance(collector, pytest.Session) and self.added_to_session and report.passed:
            report.result.append(MigrationTests.from_parent(collector, path=self.anchor))
        return report

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """The migration tests first, the others in their order: the session's test database is built by the same
        migrations, and a broken one stops the session at the first test that needs it."""
        items[:] = sorted(items, key=lambda item: not isinstance(item, MigrationTest))


class MigrationTests(pytest.File):
    """The ready-made migration tests, as the items of the ini file."""

    def collect(self) -> Iterator[pytest.Item]:
        for test in TESTS:
            item: MigrationTest = MigrationTest.from_parent(self, name=test.__name__, callobj=test)
            item.add_marker(MARKER)
            yield item


class MigrationTest(pytest.Function):
    """One ready-made migration test (the plugin isolates none of them: each has a scratch database)."""

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"[peewee-async-testing] {self.name}"


# -- the tests ------------------------------------------------------------------------------------------------------


@contextmanager
def _scratch(request: pytest.FixtureRequest) -> Iterator[Scratch]:
    """The test's scratch database (see :mod:`~peewee_async_testing.scratch`), the SQL files run on it, and the
    models' bindings as they were after it (a migration's ``create_model(AppModel)`` binds the app's model)."""
    from ._database import is_postgres

    config = request.config
    app = config.stash[GATE].database
    server = request.getfixturevalue("peewee_server") if is_postgres(app) else None
    suffix = config.getoption("peewee_db_suffix") or os.environ.get(SUFFIX_ENV, "")
    module = str(config.getini("peewee_async_database")).split(":")[0]
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    with (
        _bindings_kept(),
        _failing_on(ConfigurationError),
        scratch_database(
            app, server, original=config.stash[ORIGINAL_NAME], module=module, suffix=suffix, worker=worker
        ) as scratch,
    ):
        run_sql_files(scratch.database, sql_files(config))
        yield scratch


def _migrations(request: pytest.FixtureRequest, scratch: Scratch) -> Migrations:
    folder = migrations_folder(request.config)
    assert folder is not None, "checked as the tests were switched on"
    return Migrations(scratch.database, folder)


@contextmanager
def _failing_on(*errors: type[Exception], doing: str = "") -> Iterator[None]:
    """The test fails with the message of such an error (the library's say what happened), without a traceback."""
    try:
        yield
    except errors as error:
        raise pytest.fail.Exception(f"{doing}{error}", pytrace=False) from None


@contextmanager
def _bindings_kept() -> Iterator[None]:
    """Every model bound, after the block, to the database it was bound to before it."""
    from .cleanup import model_classes

    before = {model: model._meta.database for model in model_classes()}
    try:
        yield
    finally:
        for model, database in before.items():
            if model._meta.database is not database:
                model._meta.database = database


def test_peewee_migrations_apply(request: pytest.FixtureRequest) -> None:
    """Every migration applies, one at a time and in order, on an empty database."""
    with _scratch(request) as scratch:
        migrations = _migrations(request, scratch)
        for name in migrations.names:
            with _failing_on(MigrationError, doing="On an empty database, "):
                migrations.apply(name)


def test_peewee_migrations_up_down(request: pytest.FixtureRequest) -> None:
    """Every migration, rolled back right after it is applied, leaves the schema as it found it; and applies again."""
    with _scratch(request) as scratch:
        migrations = _migrations(request, scratch)
        with _failing_on(MigrationError):
            migrations.applied()  # makes the history table: it is in every snapshot
        for name in migrations.names:
            before = scratch.snapshot()
            with _failing_on(MigrationError):
                migrations.apply(name)
            with _failing_on(MigrationError, doing=f"Migration {name} applied, but its rollback failed: "):
                migrations.rollback()
            changed = difference(before, scratch.snapshot())
            if changed:
                pytest.fail(
                    f"Migration {name}, applied and rolled back, does not leave the schema as it found it "
                    f"(+ left by the rollback, - missing after it, ~ changed):\n  " + "\n  ".join(changed),
                    pytrace=False,
                )
            with _failing_on(MigrationError, doing=f"Migration {name}, applied and rolled back, fails again: "):
                migrations.apply(name)


def test_peewee_migrations_match_models(request: pytest.FixtureRequest) -> None:
    """After every migration, the schema is the one the models declare (no migration forgotten)."""
    from .schema import assert_models_match_schema

    models = request.config.stash[REGISTERED_MODELS]
    with _scratch(request) as scratch:
        migrations = _migrations(request, scratch)
        with _failing_on(MigrationError):
            applied = migrations.apply()
        done = f"After the {len(applied)} migrations of" if len(applied) != 1 else "After the migration of"
        doing = f"{done} {_shown(request.config, migrations.folder)}, {_NOT_THE_MODELS}:\n"
        with _failing_on(AssertionError, doing=doing):
            run_on_own_loop([assert_models_match_schema(scratch.database, models)], scratch.database)


def test_peewee_models_registered(request: pytest.FixtureRequest) -> None:
    """Every model of the app's package is among the plugin's models (no model module left unimported)."""
    from .schema import assert_all_models_registered

    config = request.config
    module = str(config.getini("peewee_async_database")).split(":")[0]
    package = str(config.getini(PACKAGE_INI)).strip() or module.partition(".")[0]
    with _failing_on(AssertionError, PeeweeAsyncTestingError):
        assert_all_models_registered(package, config.stash[REGISTERED_MODELS])


_NOT_THE_MODELS = "the schema is not the models' (a migration forgotten, or a model changed without one)"


def _shown(config: pytest.Config, path: Path) -> str:
    """``path`` relative to the root folder, if it is under it."""
    return str(path.relative_to(config.rootpath)) if config.rootpath in path.parents else str(path)


#: The tests, in the order they are collected.
TESTS: tuple[Callable[[pytest.FixtureRequest], None], ...] = (
    test_peewee_migrations_apply,
    test_peewee_migrations_up_down,
    test_peewee_migrations_match_models,
    test_peewee_models_registered,
)
