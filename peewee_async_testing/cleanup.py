"""Empty the tables of a database: the fallback for tests whose queries cannot share one transaction.

Synchronous peewee queries run on their own connection and never see a test transaction, so tests
that use them clean up by emptying the tables afterwards. The statements are planned once, by a
generator, and run either on the async pool (:func:`aio_clear_tables`) or on the synchronous
connection (:func:`clear_tables`). Before any statement, the models must be bound to the database,
and the database must be a test database (:mod:`~peewee_async_testing.guard`) unless told otherwise.
"""

from __future__ import annotations

import functools
from collections.abc import Generator, Iterable, Iterator, Sequence
from typing import Any, Literal

import peewee
from peewee_async.databases import AioDatabase, fetchall
from peewee_async.utils import sort_models

from . import seeds
from ._database import is_mysql, is_postgres, resolve_database, sync_queries
from .exceptions import ConfigurationError
from .guard import describe, refuse_unless_test_database

Strategy = Literal["truncate", "delete"]
STRATEGIES: tuple[Strategy, ...] = ("truncate", "delete")

#: (sql, params, whether it returns rows): one statement of a plan.
Statement = tuple[str, Sequence[Any], bool]
Plan = Generator[Statement, "list[tuple[Any, ...]] | None", None]

_PG_EXISTING = "SELECT name FROM unnest(%s::text[]) AS name WHERE to_regclass(name) IS NOT NULL"
#: Whether relation ``{name}`` is a table (not missing, not a view): only tables are emptied.
_PG_IS_TABLE = "(SELECT relkind FROM pg_class WHERE oid = to_regclass({name})) IN ('r', 'p')"
_PG_DELETE = """
IF {is_table} THEN
  IF EXISTS (SELECT 1 FROM {table}{where}) THEN
    DELETE FROM {table};{emptied}
  END IF;{always}
END IF;"""
_PG_RESTART = """
  seq := pg_get_serial_sequence({name}, {column});
  IF seq IS NOT NULL AND pg_sequence_last_value(seq) IS NOT NULL THEN
    PERFORM setval(seq, (SELECT seqstart FROM pg_sequence WHERE seqrelid = seq::regclass), false);
  END IF;"""


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _auto_columns(model: type[peewee.Model]) -> list[str]:
    """The columns of ``model`` that a sequence fills (its auto-increment fields)."""
    return [field.column_name for field in model._meta.sorted_fields if isinstance(field, peewee.AutoField)]


def _pg_delete_block(
    database: AioDatabase,
    models: list[type[peewee.Model]],
    sequences: bool = True,
    *,
    new_rows: str = "",
    named: Iterable[type[peewee.Model]] = (),
) -> str:
    """One statement that, children first, empties the existing tables that have rows and (``sequences``)
    restarts the sequences of their auto-increment columns that were used: one round trip, and next to
    nothing for the tables a test did not write to.

    ``new_rows``: a condition on a row (:func:`~peewee_async_testing.writes.pg_new_rows`); then only the
    tables holding a row that meets it are emptied (their sequences restarted), and those of ``named`` as
    before.
    """
    named = set(named)
    body = []
    for model in reversed(models):
        table = _quoted(database, model)
        columns = _auto_columns(model) if sequences else []
        restarts = "".join(_PG_RESTART.format(name=_literal(table), column=_literal(column)) for column in columns)
        only_new = bool(new_rows) and model not in named
        body.append(
            _PG_DELETE.format(
                table=table,
                is_table=_PG_IS_TABLE.format(name=_literal(table)),
                where=f" WHERE {new_rows}" if only_new else "",
                emptied=restarts if only_new else "",
                always="" if only_new else restarts,
            )
        )
    return f"DO $pwat$ DECLARE seq text; BEGIN{''.join(body)}\nEND $pwat$"


def _pg_delete_new(
    database: AioDatabase,
    models: list[type[peewee.Model]],
    sequences: bool,
    *,
    new_rows: str,
    named: Iterable[type[peewee.Model]] = (),
    missing: Iterable[str] = (),
) -> list[str]:
    """What :func:`_pg_delete_block` does with ``new_rows``, as plain statements (planned, not compiled:
    about half the time; sent in one query string, they run in one transaction), for ``models`` whose
    tables are known to exist.

    ``missing``: the tables (quoted) known not to exist; the statements fail, emptying nothing, if one
    exists now (or if one of ``models`` is no longer a table), and the caller falls back to the ``DO`` block.
    """
    named = set(named)
    statements = []
    if missing:
        names = ", ".join(_literal(name) for name in missing)
        statements.append(  # a cast that fails: a table appeared (not constant, so not folded at planning)
            f"SELECT ('bound table appeared: ' || name)::int FROM unnest(ARRAY[{names}]::text[]) AS name"
            " WHERE to_regclass(name) IS NOT NULL"
        )
    for model in reversed(models):
        table = _quoted(database, model)
        where = "" if model in named else f" WHERE EXISTS (SELECT 1 FROM {table} WHERE {new_rows})"
        columns = _auto_columns(model) if sequences else []
        serials = [f"pg_get_serial_sequence({_literal(table)}, {_literal(column)})::regclass" for column in columns]
        if not serials:
            statements.append(f"DELETE FROM {table}{where}")
            continue
        restart = f"SELECT setval(seqrelid, seqstart, false) FROM pg_sequence WHERE seqrelid IN ({', '.join(serials)})"
        if model in named:  # restarted even if the test emptied it itself
            statements += [f"DELETE FROM {table}", restart]
        else:
            statements.append(
                f"WITH emptied AS (DELETE FROM {table}{where} RETURNING 1) {restart} AND EXISTS (SELECT 1 FROM emptied)"
            )
    return statements


_SQLITE_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table'"

#: MySQL: foreign key checks off for the session, what they were kept in a variable; and put back as they were.
MYSQL_CHECKS_OFF = "SET @pwat_fk_checks = @@SESSION.foreign_key_checks, SESSION foreign_key_checks = 0"
#: PyMySQL's ``CLIENT.MULTI_STATEMENTS`` flag: the connection runs several statements in one string.
_MULTI_STATEMENTS = 1 << 16
MYSQL_CHECKS_BACK = "SET SESSION foreign_key_checks = IFNULL(@pwat_fk_checks, @@SESSION.foreign_key_checks)"


def mysql_schema(database: AioDatabase, model: type[peewee.Model]) -> str:
    """The MySQL database (schema) that holds ``model``'s table."""
    return str(model._meta.schema or database.database)


def mysql_tables(database: AioDatabase, models: Iterable[type[peewee.Model]]) -> str:
    """A query of the base tables (not views) among those of ``models``: ``('table', name, schema)`` rows."""
    models = list(models)
    schemas = ", ".join(sorted({_literal(mysql_schema(database, model)) for model in models}))
    names = ", ".join(sorted({_literal(model._meta.table_name) for model in models}))
    return (
        "SELECT 'table', TABLE_NAME, TABLE_SCHEMA FROM information_schema.TABLES"
        f" WHERE TABLE_SCHEMA IN ({schemas}) AND TABLE_NAME IN ({names}) AND TABLE_TYPE = 'BASE TABLE'"
    )


def mysql_present(
    database: AioDatabase, models: Iterable[type[peewee.Model]], rows: Iterable[tuple[Any, ...]]
) -> list[type[peewee.Model]]:
    """The models among ``models`` whose table :func:`mysql_tables`' ``rows`` show to exist."""
    present = {(str(schema), str(name)) for kind, name, schema in rows if kind == "table"}
    return [model for model in models if (mysql_schema(database, model), model._meta.table_name) in present]


def mysql_empty(
    database: AioDatabase, models: list[type[peewee.Model]], strategy: Strategy, sequences: bool, *, sync: bool
) -> Plan:
    """Empty the (existing) tables of ``models`` on MySQL, with foreign key checks off and then put back as they
    were, also when a statement fails: ``TRUNCATE TABLE`` each, or ``DELETE`` children first and (``sequences``)
    ``ALTER TABLE ... AUTO_INCREMENT = 1``. All go in one string, one round trip, where the connection runs
    several statements in one (aiomysql's do; ``sync``: peewee's synchronous one, asked now); else one each.
    Both ``TRUNCATE`` and ``ALTER TABLE`` commit implicitly."""
    if not models:
        return
    tables = [_quoted(database, model) for model in reversed(models)]
    if strategy == "truncate":
        emptying = [f"TRUNCATE TABLE {table}" for table in tables]
    else:
        emptying = [f"DELETE FROM {table}" for table in tables]
        if sequences:
            emptying += [
                f"ALTER TABLE {_quoted(database, model)} AUTO_INCREMENT = 1"
                for model in reversed(models)
                if _auto_columns(model)
            ]
    statements = [MYSQL_CHECKS_OFF, *emptying, MYSQL_CHECKS_BACK]
    try:
        if not sync or sync_multi_statements(database):
            yield "; ".join(statements), (), False
        else:
            for statement in statements:
                yield statement, (), False
    except peewee.DatabaseError:
        yield MYSQL_CHECKS_BACK, (), False  # on the same connection: the plan holds one
        raise


def sync_multi_statements(database: AioDatabase) -> bool:
    """Whether peewee's synchronous connection to ``database``, open now, runs several statements in one string:
    PyMySQL's do only when made with ``client_flag`` ``MULTI_STATEMENTS``."""
    connection = None if database.is_closed() else database._state.conn
    return bool(getattr(connection, "client_flag", 0) & _MULTI_STATEMENTS)


def bound_models(database: Any) -> list[type[peewee.Model]]:
    """Every model class bound to ``database`` (directly or through a proxy), parents before children.

    Models are found by walking the subclasses of :class:`peewee.Model`, so they only need to be imported.
    """
    database = resolve_database(database, purpose="bound_models", uninitialised=True)  # models need no connection
    found: dict[tuple[str | None, str], type[peewee.Model]] = {}
    for model in model_classes():
        if _bound_database(model) is database:
            found.setdefault((model._meta.schema, model._meta.table_name), model)
    return list(sort_models(found.values()))


def model_classes() -> Iterator[type[peewee.Model]]:
    """Every subclass of :class:`peewee.Model` defined so far, each once."""
    seen: set[type[peewee.Model]] = set()
    pending = [peewee.Model]
    while pending:
        for model in pending.pop().__subclasses__():
            if model not in seen:
                seen.add(model)
                pending.append(model)
                yield model


def _bound_database(model: type[peewee.Model]) -> Any:
    """The database ``model`` is bound to, through a proxy; None for none (or a proxy not initialised)."""
    bound = model._meta.database
    return bound.obj if isinstance(bound, peewee.DatabaseProxy) else bound


def _bound_to(model: type[peewee.Model]) -> str:
    bound = _bound_database(model)
    return "no database" if bound is None else repr(getattr(bound, "database", bound))


def _check_strategy(strategy: Strategy) -> Strategy:
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown clear_tables strategy {strategy!r}; use one of: {', '.join(STRATEGIES)}.")
    return strategy


def _guarded(
    database: AioDatabase, models: Iterable[Any] | None, *, purpose: str, allow_any_database: bool
) -> list[type[peewee.Model]]:
    """``models`` (by default every model bound to ``database``), parents first, once they are shown to be
    model classes bound to ``database``, and ``database`` a test database (unless ``allow_any_database``).

    :raises TypeError: for what is not a model class.
    :raises ConfigurationError: for a model bound to another database (its namesake table in ``database``
        would be emptied), or a database that is not a test database.
    """
    if models is None:
        models = bound_models(database)
    models = list(models)
    wrong = [model for model in models if not (isinstance(model, type) and issubclass(model, peewee.Model))]
    if wrong:
        raise TypeError(f"{purpose} takes peewee model classes, but was given {wrong!r}.")
    models = list(_sorted(tuple(models)))
    strangers = [model for model in models if _bound_database(model) is not database]
    if strangers:
        names = ", ".join(f"{model.__name__} (bound to {_bound_to(model)})" for model in strangers)
        raise ConfigurationError(
            f"{purpose} empties the tables of {describe(database)}, and was given models not bound to it: {names}. "
            "Nothing was emptied: their namesake tables in it would have been. Pass the models' own database, or "
            "leave models out to empty those of every model bound to it (bound_models(database) lists them)."
        )
    if not allow_any_database:
        refuse_unless_test_database(database, models, purpose=purpose)
    return models


@functools.lru_cache(maxsize=32)
def _sorted(models: tuple[type[peewee.Model], ...]) -> tuple[type[peewee.Model], ...]:
    """``models`` parents first (peewee-async's ``sort_models``), worked out once for each set: a clear per test."""
    return tuple(sort_models(models))


def _quoted(database: AioDatabase, model: type[peewee.Model]) -> str:
    quote = database.quote[0]
    parts = [model._meta.schema, model._meta.table_name] if model._meta.schema else [model._meta.table_name]
    return ".".join(quote + part.replace(quote, quote * 2) + quote for part in parts)


def _plan(
    database: AioDatabase,
    models: list[type[peewee.Model]],
    strategy: Strategy,
    *,
    sequences: bool = True,
    sync: bool = False,
) -> Plan:
    """Yield the statements that empty the tables of ``models`` (checked by :func:`_guarded`); receive each
    statement's rows. ``sequences``: restart their auto-increment counters too. ``sync``: the plan runs on
    peewee's synchronous connection.
    """
    if not models:
        return
    if is_mysql(database):
        rows = yield mysql_tables(database, models), (), True
        existing = mysql_present(database, models, rows or ())
        yield from mysql_empty(database, existing, strategy, sequences, sync=sync)
        return
    if is_postgres(database):
        tables = [_quoted(database, model) for model in models]
        if strategy == "delete":
            yield _pg_delete_block(database, models, sequences), (), False
            return
        rows = yield _PG_EXISTING, (tables,), True
        present = {name for (name,) in rows or ()}
        tables = [table for table in tables if table in present]
        if not tables:
            return
        yield f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE", (), False
        return
    # SQLite has no TRUNCATE: delete children first, then forget the AUTOINCREMENT counters.
    rows = yield _SQLITE_TABLES, (), True
    present = {name for (name,) in rows or ()}
    models = [model for model in models if model._meta.table_name in present]
    for model in reversed(models):
        yield f"DELETE FROM {_quoted(database, model)}", (), False
    if models and sequences and "sqlite_sequence" in present:
        names = [model._meta.table_name for model in models]
        yield f"DELETE FROM sqlite_sequence WHERE name IN ({', '.join('?' * len(names))})", names, False


async def aio_clear_tables(
    database: Any,
    models: Iterable[type[peewee.Model]] | None = None,
    *,
    strategy: Strategy = "truncate",
    allow_any_database: bool = False,
) -> None:
    """Empty the tables of ``models`` through the database's async pool.

    :param database: a peewee-async database (PostgreSQL, MySQL/MariaDB or SQLite), or a
        :class:`peewee.DatabaseProxy` initialised with one.
    :param models: the models whose tables to empty, each bound to ``database`` (directly or through a
        proxy); by default every model bound to it.
    :param strategy: on PostgreSQL, ``"truncate"`` runs one ``TRUNCATE ... RESTART IDENTITY CASCADE`` for
        all tables; ``"delete"`` runs one statement that, children first, deletes from the tables that have
        rows and restarts their sequences that were used (much cheaper for the few rows of a test).
        On MySQL/MariaDB, with foreign key checks off (and then put back as they were, also after an error),
        in one round trip: ``"truncate"`` runs ``TRUNCATE TABLE`` for each table, ``"delete"`` deletes,
        children first, and resets each ``AUTO_INCREMENT`` with ``ALTER TABLE`` (a quarter of ``TRUNCATE``'s
        time for a test's few rows; ``TRUNCATE`` is cheaper from about a thousand rows). Both ``TRUNCATE`` and
        ``ALTER TABLE`` commit implicitly: clear outside a transaction. SQLite always deletes (children
        first) and resets ``sqlite_sequence``.
    :param allow_any_database: empty the tables of a database that is not a test database too. By default
        only a test database is emptied: one named ``test_...``, one on a throwaway server this process
        started, or SQLite in memory or in a temporary folder.
    :raises ConfigurationError: before any statement, for a model bound to another database, or a database
        that is not a test database (unless ``allow_any_database``).

    Tables that do not exist are skipped.

    Example::

        await aio_clear_tables(database)                      # every bound model
        await aio_clear_tables(database, [Book], strategy="delete")
    """
    db = resolve_database(database, purpose="aio_clear_tables")
    strategy = _check_strategy(strategy)
    checked = _guarded(db, models, purpose="aio_clear_tables", allow_any_database=allow_any_database)
    await _aio_run(db, _plan(db, checked, strategy))


def clear_tables(
    database: Any,
    models: Iterable[type[peewee.Model]] | None = None,
    *,
    strategy: Strategy = "truncate",
    allow_any_database: bool = False,
) -> None:
    """Empty the tables of ``models`` through the database's synchronous connection.

    The same as :func:`aio_clear_tables` (with the same guards), for code without an event loop (and for
    synchronous tests). Sync queries are allowed for the call only; a connection it opens, it closes.

    Example::

        clear_tables(database, strategy="delete")
    """
    db = resolve_database(database, purpose="clear_tables")
    strategy = _check_strategy(strategy)
    checked = _guarded(db, models, purpose="clear_tables", allow_any_database=allow_any_database)
    _run(db, _plan(db, checked, strategy, sync=True))


async def _aio_run(database: AioDatabase, plan: Plan) -> None:
    """Run ``plan`` through the async pool, on one connection; a statement's error is thrown into the plan, which
    may go on (on that connection: MySQL's foreign key checks are put back where they were turned off)."""
    async with database.aio_connection():
        rows: list[tuple[Any, ...]] | None = None
        error: peewee.DatabaseError | None = None
        try:
            while True:
                sql, params, returns_rows = plan.send(rows) if error is None else plan.throw(error)
                error = None
                try:
                    fetch = fetchall if returns_rows else None
                    rows = await database.aio_execute_sql(sql, params, fetch_results=fetch)
                except peewee.DatabaseError as raised:
                    error = raised
        except StopIteration:
            pass
        for sql, params in seeds.restore_plan(database):
            await database.aio_execute_sql(sql, params)


def _drain(database: AioDatabase, cursor: Any) -> None:
    """Read the results of the later statements of a string (MySQL), so that their errors are raised here."""
    if is_mysql(database):
        with peewee.__exception_wrapper__:  # type: ignore[attr-defined]  # peewee ships no types
            while cursor.nextset():
                pass


def _run(database: AioDatabase, plan: Plan) -> None:
    """:func:`_aio_run` through the synchronous connection."""
    with sync_queries(database):
        rows: list[tuple[Any, ...]] | None = None
        error: peewee.DatabaseError | None = None
        try:
            while True:
                sql, params, returns_rows = plan.send(rows) if error is None else plan.throw(error)
                error = None
                try:
                    cursor = database.execute_sql(sql, params)
                    rows = cursor.fetchall() if returns_rows else None
                    _drain(database, cursor)
                except peewee.DatabaseError as raised:
                    error = raised
        except StopIteration:
            pass
        for sql, params in seeds.restore_plan(database):
            database.execute_sql(sql, params)
