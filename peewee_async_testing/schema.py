"""Drift checks: whether a live database has the schema the models describe, and whether every model is imported.

:func:`assert_models_match_schema` reads the schema through the database's async API (three catalog queries for
all the tables: columns, foreign keys, indexes), so inside a :class:`~peewee_async_testing.TransactionTestCase`
it sees the test's own uncommitted ``ALTER TABLE``; it compares what it read (:mod:`~peewee_async_testing.catalog`)
with what the models would create, rendered for that database. :func:`assert_all_models_registered` imports a
package whole and names the models defined in it that the test database was not built for.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Any

import peewee
from peewee_async.databases import AioDatabase
from peewee_async.utils import sort_models

from . import catalog, mysql_catalog
from ._compat import index_parts
from ._database import _name, is_mysql, is_postgres, resolve_database
from .catalog import Column, ForeignKey, Index, Table
from .cleanup import bound_models, model_classes
from .exceptions import ConfigurationError

__all__ = ["assert_all_models_registered", "assert_models_match_schema"]


async def assert_models_match_schema(database: Any, models: Iterable[type[peewee.Model]] | None = None) -> None:
    """Assert that the live schema of ``database`` has the tables, columns, foreign keys and indexes of ``models``.

    :param database: a peewee-async database (PostgreSQL, MySQL/MariaDB or SQLite), or a
        :class:`peewee.DatabaseProxy` initialised with one: the schema read, and the SQL dialect the models are
        rendered in.
    :param models: the models to compare, bound to ``database`` or not (the app's models against a scratch
        database that migrations built); by default every model bound to it
        (:func:`~peewee_async_testing.bound_models`).
    :raises AssertionError: listing every difference, by table, one a line: a missing table; a missing column,
        or one the models do not have; a column whose type (family: ``VARCHAR`` is ``character varying``,
        ``SERIAL`` an ``integer`` with a sequence; on MySQL ``INTEGER`` is ``int(11)``, ``BOOL`` ``tinyint(1)``),
        nullability, primary key or declared ``DEFAULT`` differs; a missing or extra foreign key, or one whose
        target or ``ON DELETE`` differs; a missing or extra index (by columns and uniqueness). Tables no model has
        are not compared.
    :raises ConfigurationError: for no models to compare.

    Example::

        await assert_models_match_schema(database, [Author, Book])
        # models=None: every model bound to the database
    """
    __tracebackhide__ = True
    db = resolve_database(database, purpose="assert_models_match_schema")
    checked = _models(db if models is None else models, default=models is None)
    tables = await catalog.read(db, [catalog.qualified(db, model) for model in checked])
    canonical = mysql_catalog.mysql_default if is_mysql(db) else catalog.canonical_default
    differences = [
        f"{catalog.label(model)}: {line}"
        for model in checked
        for line in _differences(_expected(db, model), tables.get(catalog.qualified(db, model)), canonical)
    ]
    if differences:
        differing = len({line.partition(":")[0] for line in differences})
        raise AssertionError(
            f"The schema of the {_name(type(db))} {db.database!r} differs from the models: "
            f"{_count(differences, 'difference')} in {differing} of the {_count(checked, 'table')} compared.\n"
            + "\n".join(f"  {line}" for line in differences)
        )


def _models(given: Any, *, default: bool) -> list[type[peewee.Model]]:
    """The models to compare, parents first: those given, or those bound to the database ``given``."""
    models = bound_models(given) if default else list(given)
    wrong = [model for model in models if not (isinstance(model, type) and issubclass(model, peewee.Model))]
    if wrong:
        raise TypeError(f"assert_models_match_schema takes peewee model classes, but was given {wrong!r}.")
    if not models:
        raise ConfigurationError(
            "assert_models_match_schema has no models to compare: "
            + ("none is bound to the database. " if default else "it was given none. ")
            + "Pass them as models=[...] (they need not be bound to the database)."
        )
    return list(sort_models(dict.fromkeys(models)))


# -- what the models would create ----------------------------------------------------------------------------------


def _expected(database: AioDatabase, model: type[peewee.Model]) -> Table:
    """The table ``model`` would create on ``database``, in the shape :mod:`catalog` reads one."""
    key = model._meta.primary_key
    keys = set(key.field_names) if isinstance(key, peewee.CompositeKey) else {key.name} if key else set()
    table = Table()
    for field in model._meta.sorted_fields:
        table.columns[field.column_name] = _expected_column(database, field, field.name in keys)
        if isinstance(field, peewee.ForeignKeyField):
            if field.deferred:  # peewee leaves its constraint to a later ALTER TABLE: not compared
                table.opaque_foreign_keys = True
                continue
            table.foreign_keys.append(
                ForeignKey(
                    (field.column_name,),
                    field.rel_model._meta.table_name,
                    (field.rel_field.column_name,),
                    _on_delete(database, field.on_delete or "NO ACTION"),
                )
            )
    for constraint in model._meta.constraints or ():
        if "REFERENCES" in _sql(database, constraint).upper():  # a foreign key in raw SQL: not compared
            table.opaque_foreign_keys = True
    for index in model._meta.fields_to_index():
        columns = _index_columns(index)
        if columns is None:
            table.opaque_indexes = True
        else:
            table.indexes.append(Index(columns, index_parts(index)[1]))
    return table


def _on_delete(database: AioDatabase, action: str) -> str:
    return mysql_catalog.mysql_on_delete(action) if is_mysql(database) else action.upper()


def _expected_column(database: AioDatabase, field: peewee.Field, primary_key: bool) -> Column:
    node = field.ddl_datatype(database.get_sql_context())
    declared = _sql(database, node) if node is not None else ""
    default = next(
        (
            text[len("DEFAULT ") :].strip()
            for constraint in field.constraints or ()
            if isinstance(constraint, peewee.SQL)
            for text in [constraint.sql.strip()]
            if text.upper().startswith("DEFAULT ")
        ),
        None,
    )
    if is_postgres(database):
        family = catalog.pg_family(declared, auto=bool(field.sequence))
    elif is_mysql(database):
        family = mysql_catalog.mysql_family(declared)
    else:
        family = catalog.sqlite_family(declared)
    return Column(declared, family if declared else None, field.null, primary_key, default)


def _index_columns(index: Any) -> tuple[str, ...] | None:
    """The columns of a model's index, in order; None for one that cannot be compared by its columns (raw SQL,
    an expression)."""
    if not isinstance(index, peewee.ModelIndex):
        return None
    expressions = index_parts(index)[0]
    if not all(isinstance(part, peewee.Field) for part in expressions):
        return None
    return tuple(part.column_name for part in expressions)


def _sql(database: AioDatabase, node: Any) -> str:
    """``node`` as ``database`` writes it (a fresh context: a used one keeps its text)."""
    return str(database.get_sql_context().sql(node).query()[0])


# -- the differences -----------------------------------------------------------------------------------------------


def _differences(expected: Table, actual: Table | None, canonical: Callable[[str | None], str | None]) -> Iterator[str]:
    """The differences between the table the model would create and the one the database has, one a line
    (defaults compared as ``canonical`` spells them)."""
    if actual is None:
        yield "table missing"
        return
    for name, column in expected.columns.items():
        found, declared = actual.columns.get(name), column.default is not None
        if found is None:
            yield f'column "{name}" missing ({column.shown(declared)} in the models)'
        elif not column.matches(found, canonical):
            yield f'column "{name}" is {column.shown(declared)} in the models, {found.shown(declared)} in the database'
    for name, column in actual.columns.items():
        if name not in expected.columns:
            yield f'column "{name}" not in the models ({column.shown(False)} in the database)'
    yield from _foreign_key_differences(expected, actual)
    yield from _index_differences(expected, actual)


def _foreign_key_differences(expected: Table, actual: Table) -> Iterator[str]:
    found = {key.columns: key for key in actual.foreign_keys}
    for key in expected.foreign_keys:
        other = found.pop(key.columns, None)
        if other is None:
            yield f"foreign key {key} missing"
        elif other != key:
            there = other.on_delete_clause() if other.target() == key.target() else str(other)
            yield f"foreign key {key} in the models, {there} in the database"
    if not expected.opaque_foreign_keys:
        yield from (f"foreign key {key} not in the models" for key in found.values())


def _index_differences(expected: Table, actual: Table) -> Iterator[str]:
    missing, extra = list(expected.indexes), []
    for index in actual.indexes:
        if index in missing:
            missing.remove(index)
        elif None not in index.columns:  # an expression index cannot be matched to a model's
            extra.append(index)
    for index in missing:
        other = next((found for found in extra if found.columns == index.columns), None)
        if other is not None:
            extra.remove(other)
            yield f"index {index.described()} is {'' if index.unique else 'not '}unique in the models, " + (
                f"{'' if other.unique else 'not '}unique in the database"
            )
        else:
            yield f"{index} missing"
    if not expected.opaque_indexes:
        yield from (f"{index} not in the models" for index in extra if not index.for_foreign_key)


# -- assert_all_models_registered ----------------------------------------------------------------------------------


def assert_all_models_registered(package: ModuleType | str, models: Iterable[type[peewee.Model]] | None = None) -> None:
    """Assert that every model class defined under ``package`` is among ``models``: no model module is left out.

    :param package: a package (or module), or its dotted name: it is imported with every module under it.
    :param models: the models the test database was built for; by default those the plugin's session built it
        for, read at the call.
    :raises AssertionError: naming each model defined under ``package`` (its ``__module__`` is the package or
        below it; a model merely imported there does not count) that is not among ``models``, and each module
        under ``package`` that fails to import, with its error. A model with no database (a base class whose
        ``Meta`` names none) is not counted: it has no table.
    :raises ConfigurationError: for no ``models`` given, outside a plugin session that built a test database;
        for a dotted name no module has.

    Inside a test session, a test module may already have imported a model module that nothing the plugin
    imports does: that import does not count, only ``models`` does, compared by class identity (but a model the
    plugin found bound to the database when it built it is among them).

    Example::

        def test_every_model_is_created():
            assert_all_models_registered("myapp.models")
    """
    __tracebackhide__ = True
    if models is None:
        from . import testdb  # at the call: the plugin fills the list as it sets the test database up

        models = testdb.CREATED_MODELS
        if not models:
            raise ConfigurationError(
                "assert_all_models_registered compares with the models the plugin built the test database for, and "
                "there are none: no plugin session has set one up. Pass models=[...] (such as "
                "bound_models(database)), or call it from a test run under the plugin."
            )
    known = set(models)
    root, failures = _import_all(package)
    missing = sorted(
        (
            model
            for model in model_classes()
            if (model.__module__ == root or model.__module__.startswith(f"{root}."))
            and model._meta.database is not None
            and model not in known
        ),
        key=lambda model: (model.__module__, model.__qualname__),
    )
    message = []
    if failures:
        message.append(f"{_count(failures, 'module')} under {root} failed to import:")
        message += [f"  {name}: {error}" for name, error in failures]
    if missing:
        modules = list(dict.fromkeys(model.__module__ for model in missing))
        given = _count(list(known), "model")
        message.append(f"{_count(missing, 'model')} defined under {root} not among the {given} given:")
        message += [f'  {model.__module__}.{model.__qualname__} (table "{catalog.label(model)}")' for model in missing]
        message.append(
            f"Nothing the plugin imports imports {'the module' if len(modules) == 1 else 'the modules'} "
            f"{', '.join(modules)}, so the test database was built without {'it' if len(missing) == 1 else 'them'}: "
            "add the module to the `peewee_async_models` ini list, or import it from the database's module."
        )
    if message:
        raise AssertionError("\n".join(message))


def _count(items: list[Any], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _import_all(package: ModuleType | str) -> tuple[str, list[tuple[str, str]]]:
    """Import ``package`` and every module under it; return its name, and (name, error) for each module that
    failed to import (a package that failed is not walked into)."""
    if isinstance(package, str):
        try:
            root = importlib.import_module(package)
        except ModuleNotFoundError as error:
            if error.name != package:
                raise
            raise ConfigurationError(
                f"assert_all_models_registered found no module named {package!r}: pass the package (or its dotted "
                "name) that the models are defined in."
            ) from None
    elif isinstance(package, ModuleType):
        root = package
    else:
        raise TypeError(f"assert_all_models_registered takes a module or a dotted name, not {package!r}.")
    failures, pending = [], [root]
    while pending:
        parent = pending.pop()
        for info in pkgutil.iter_modules(getattr(parent, "__path__", None) or [], prefix=f"{parent.__name__}."):
            try:
                module = importlib.import_module(info.name)
            except Exception as error:
                failures.append((info.name, f"{type(error).__name__}: {error}"))
                continue
            if info.ispkg:
                pending.append(module)
    return root.__name__, sorted(failures)
