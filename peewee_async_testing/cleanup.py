"""Empty the tables of a database: the fallback for tests whose queries cannot share one transaction.

Synchronous peewee queries run on their own connection and never see a test transaction, so tests
that use them clean up by emptying the tables afterwards. The statements are planned once, by a
generator, and run either on the async pool (:func:`aio_clear_tables`) or on the synchronous
connection (:func:`clear_tables`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterable, Sequence
from typing import Any, Literal

import peewee
from peewee_async.databases import AioDatabase, fetchall
from peewee_async.utils import sort_models

from ._database import is_postgres, resolve_database, sync_queries
from .patches import set_attribute

Strategy = Literal["truncate", "delete"]
STRATEGIES: tuple[Strategy, ...] = ("truncate", "delete")

#: (sql, params, whether it returns rows): one statement of a plan.
Statement = tuple[str, Sequence[Any], bool]
Plan = Generator[Statement, "list[tuple[Any, ...]] | None", None]

_PG_EXISTING = "SELECT name FROM unnest(%s::text[]) AS name WHERE to_regclass(name) IS NOT NULL"
_PG_DELETE = """
IF to_regclass({name}) IS NOT NULL THEN
  IF EXISTS (SELECT 1 FROM {table}) THEN
    DELETE FROM {table};
  END IF;{sequences}
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


def _pg_delete_block(database: AioDatabase, models: list[type[peewee.Model]], sequences: bool = True) -> str:
    """One statement that, children first, empties the existing tables that have rows and (``sequences``)
    restarts the sequences of their auto-increment columns that were used: one round trip, and next to
    nothing for the tables a test did not write to."""
    body = []
    for model in reversed(models):
        table = _quoted(database, model)
        columns = _auto_columns(model) if sequences else []
        restarts = "".join(_PG_RESTART.format(name=_literal(table), column=_literal(column)) for column in columns)
        body.append(_PG_DELETE.format(table=table, name=_literal(table), sequences=restarts))
    return f"DO $pwat$ DECLARE seq text; BEGIN{''.join(body)}\nEND $pwat$"


def _pg_delete_written(database: AioDatabase, models: list[type[peewee.Model]], sequences: bool) -> str:
    """For tables known to exist and to have been written to: plain ``DELETE`` statements, children
    first, then (``sequences``) one ``SELECT`` that restarts the sequences of their auto-increment
    columns; sent as one query string, so one round trip, and cheaper than compiling a ``DO`` block."""
    statements, serials = [], []
    for model in reversed(models):
        table = _quoted(database, model)
        statements.append(f"DELETE FROM {table}")
        columns = _auto_columns(model) if sequences else []
        serials += [f"pg_get_serial_sequence({_literal(table)}, {_literal(column)})::regclass" for column in columns]
    if serials:
        statements.append(
            f"SELECT setval(seqrelid, seqstart, false) FROM pg_sequence WHERE seqrelid IN ({', '.join(serials)})"
        )
    return "; ".join(statements)


_SQLITE_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table'"


def bound_models(database: Any) -> list[type[peewee.Model]]:
    """Every model class bound to ``database`` (directly or through a proxy), parents before children.

    Models are found by walking the subclasses of :class:`peewee.Model`, so they only need to be imported.
    """
    database = resolve_database(database, purpose="bound_models", uninitialised=True)  # models need no connection
    found: dict[tuple[str | None, str], type[peewee.Model]] = {}
    pending: list[type[peewee.Model]] = [peewee.Model]
    while pending:
        for model in pending.pop().__subclasses__():
            pending.append(model)
            bound = model._meta.database
            if isinstance(bound, peewee.DatabaseProxy):
                bound = bound.obj
            if bound is database:
                found.setdefault((model._meta.schema, model._meta.table_name), model)
    return list(sort_models(found.values()))


def _check(models: Iterable[Any] | None, strategy: str) -> list[type[peewee.Model]] | None:
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown clear_tables strategy {strategy!r}; use one of: {', '.join(STRATEGIES)}.")
    if models is None:
        return None
    models = list(models)
    wrong = [model for model in models if not (isinstance(model, type) and issubclass(model, peewee.Model))]
    if wrong:
        raise TypeError(f"clear_tables takes peewee model classes, but was given {wrong!r}.")
    return list(sort_models(models))


def _quoted(database: AioDatabase, model: type[peewee.Model]) -> str:
    quote = database.quote[0]
    parts = [model._meta.schema, model._meta.table_name] if model._meta.schema else [model._meta.table_name]
    return ".".join(quote + part.replace(quote, quote * 2) + quote for part in parts)


def _plan(
    database: AioDatabase,
    models: list[type[peewee.Model]] | None,
    strategy: Strategy,
    *,
    written: bool = False,
    sequences: bool = True,
) -> Plan:
    """Yield the statements that empty the tables of ``models``; receive each statement's rows.

    ``written``: the tables are known to exist (a :class:`WriteTracker` saw writes to them succeed).
    ``sequences``: restart their auto-increment counters too.
    """
    models = bound_models(database) if models is None else models
    if not models:
        return
    if is_postgres(database):
        tables = [_quoted(database, model) for model in models]
        if strategy == "delete":
            make = _pg_delete_written if written else _pg_delete_block
            sql = make(database, models, sequences)
            yield sql, (), False
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
    database: Any, models: Iterable[type[peewee.Model]] | None = None, *, strategy: Strategy = "truncate"
) -> None:
    """Empty the tables of ``models`` through the database's async pool.

    :param database: a peewee-async database, or a :class:`peewee.DatabaseProxy` initialised with one.
    :param models: the models whose tables to empty; by default every model bound to ``database``.
    :param strategy: on PostgreSQL, ``"truncate"`` runs one ``TRUNCATE ... RESTART IDENTITY CASCADE`` for
        all tables; ``"delete"`` runs one statement that, children first, deletes from the tables that have
        rows and restarts their sequences that were used (much cheaper for the few rows of a test).
        SQLite always deletes (children first) and resets ``sqlite_sequence``.

    Tables that do not exist are skipped.

    Example::

        await aio_clear_tables(database)                      # every bound model
        await aio_clear_tables(database, [Book], strategy="delete")
    """
    db = resolve_database(database, purpose="aio_clear_tables")
    await _aio_run(db, _plan(db, _check(models, strategy), strategy))


def clear_tables(
    database: Any, models: Iterable[type[peewee.Model]] | None = None, *, strategy: Strategy = "truncate"
) -> None:
    """Empty the tables of ``models`` through the database's synchronous connection.

    The same as :func:`aio_clear_tables`, for code without an event loop (and for synchronous tests).
    Sync queries are allowed for the call only; a connection it opens, it closes.

    Example::

        clear_tables(database, strategy="delete")
    """
    db = resolve_database(database, purpose="clear_tables")
    _run(db, _plan(db, _check(models, strategy), strategy))


async def _aio_run(database: AioDatabase, plan: Plan) -> None:
    rows: list[tuple[Any, ...]] | None = None
    try:
        while True:
            sql, params, returns_rows = plan.send(rows)
            rows = await database.aio_execute_sql(sql, params, fetch_results=fetchall if returns_rows else None)
    except StopIteration:
        pass


def _run(database: AioDatabase, plan: Plan) -> None:
    with sync_queries(database):
        rows: list[tuple[Any, ...]] | None = None
        try:
            while True:
                sql, params, returns_rows = plan.send(rows)
                cursor = database.execute_sql(sql, params)
                rows = cursor.fetchall() if returns_rows else None
        except StopIteration:
            pass


_WRITE = re.compile(
    r'^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+((?:"(?:[^"]|"")+"|\w+)(?:\s*\.\s*(?:"(?:[^"]|"")+"|\w+))?)', re.I
)
_NO_WRITE = re.compile(r"^\s*(?:SELECT|SHOW|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|SET|EXPLAIN|VALUES)\b", re.I)


class WriteTracker:
    """Watches the statements a database runs, async and sync alike, and tells which tables they wrote to.

    So a test's clean-up can leave alone the tables it never touched. A statement counts once it has
    succeeded; one it cannot read (DDL, ``WITH ... INSERT``, a function call) counts as a write to
    every table.

    Example::

        tracker = WriteTracker(database)
        with tracker:
            await Book.aio_create(title="notes", author=await Author.aio_create(name="ada"))
        assert tracker.written([Author, Book, User]) == [Author, Book]
    """

    def __init__(self, database: Any) -> None:
        self.database = resolve_database(database, purpose="WriteTracker")
        self.tables: set[str] = set()
        self.everything = False
        self._undo: list[Callable[[], None]] = []

    def __enter__(self) -> WriteTracker:
        database = self.database
        for name, watching in (("aio_execute_sql", self._aio_watching), ("execute_sql", self._watching)):
            self._undo.append(set_attribute(database, name, watching(getattr(database, name))))
        return self

    def __exit__(self, *exc_info: object) -> None:
        while self._undo:
            self._undo.pop()()

    def _watching(self, execute: Any) -> Any:
        def watched(sql: str, *args: Any, **kwargs: Any) -> Any:
            result = execute(sql, *args, **kwargs)
            self.saw(sql)
            return result

        return watched

    def _aio_watching(self, execute: Any) -> Any:
        async def watched(sql: str, *args: Any, **kwargs: Any) -> Any:
            result = await execute(sql, *args, **kwargs)
            self.saw(sql)
            return result

        return watched

    def saw(self, sql: str) -> None:
        """Note what ``sql`` writes to."""
        match = _WRITE.match(sql)
        if match:
            self.tables.add(match.group(1).split(".")[-1].strip().strip('"').replace('""', '"'))
        elif not _NO_WRITE.match(sql):
            self.everything = True

    def written(self, models: Iterable[type[peewee.Model]]) -> list[type[peewee.Model]]:
        """The models among ``models`` whose tables were written to (all of them after an unreadable write)."""
        return [model for model in models if self.everything or model._meta.table_name in self.tables]

    async def aio_clear(self, models: Iterable[type[peewee.Model]], *, sequences: bool = True) -> None:
        """Empty the tables among ``models`` written to so far (then forget them), with the ``delete``
        strategy in one round trip. ``sequences``: restart their auto-increment counters too.

        Plain ``DELETE`` statements when every statement seen could be read: the tables exist, since
        writes to them succeeded. Else (on PostgreSQL) the ``DO`` block of ``aio_clear_tables``, which
        checks that each table exists and has rows.
        """
        plan = self._plan(models, sequences)
        if plan is not None:
            await _aio_run(self.database, plan)

    def clear(self, models: Iterable[type[peewee.Model]], *, sequences: bool = True) -> None:
        """:meth:`aio_clear` through the synchronous connection."""
        plan = self._plan(models, sequences)
        if plan is not None:
            _run(self.database, plan)

    def _plan(self, models: Iterable[type[peewee.Model]], sequences: bool) -> Plan | None:
        written, readable = self.written(models), not self.everything
        self.tables, self.everything = set(), False
        if not written:
            return None
        return _plan(self.database, written, "delete", written=readable, sequences=sequences)
