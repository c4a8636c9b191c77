"""Find the tables a test wrote to, whatever wrote them, for the ``clear_tables`` fixture to empty.

:class:`WriteTracker` reads the statements the database object runs, and asks the engine for the rest:
on PostgreSQL, the rows written since a mark (their ``xmin``); on SQLite, an authorizer on the
database's connections; on MySQL/MariaDB, what its connections send and the triggers, cascades and
functions that writes there may set off. When it cannot tell, every table counts as written: never fewer.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import sqlite3
import sys
from collections.abc import Callable, Iterable
from typing import Any

import peewee
import peewee_async
from peewee_async.databases import fetchall

from . import seeds
from ._database import is_mysql, is_postgres, is_sqlite, resolve_database, sync_queries
from .cleanup import (
    Plan,
    _aio_run,
    _guarded,
    _literal,
    _pg_delete_block,
    _pg_delete_new,
    _plan,
    _quoted,
    _run,
    bound_models,
)
from .exceptions import ConfigurationError
from .guard import describe, refuse_unless_test_database
from .mysql_writes import mysql_written
from .patches import set_attribute
from .targets import called_names, written_tables

#: Where the server's transaction ids stand, ``xmin:xmax:running,...``: every transaction that writes later
#: gets an id of at least ``xmax``; those running now, below it, are listed.
_PG_SNAPSHOT = "SELECT txid_current_snapshot()::text"
_SNAPSHOT = re.compile(r"\d+:\d+:[\d,]*")
_XIDS = 1 << 32  # a row's xmin is the low 32 bits of its transaction's id


#: A point in the server's history: (xmax, running ids), each the low 32 bits.
Since = tuple[int, tuple[int, ...]]


def _pg_mark(tables: list[str]) -> str:
    """The snapshot, and the kind of each of ``tables`` (quoted): ``r`` or ``p`` for a table, another
    ``relkind`` (a view...), or ``""`` for none. One row."""
    kinds = ", ".join(
        f"COALESCE((SELECT relkind::text FROM pg_class WHERE oid = to_regclass({_literal(table)})), '')"
        for table in tables
    )
    return f"{_PG_SNAPSHOT}, ARRAY[{kinds}]::text[]"


def _pg_since(snapshot: str) -> Since:
    """``snapshot`` (:data:`_PG_SNAPSHOT`'s row) as the low 32 bits of its ``xmax`` and of its running ids."""
    _, xmax, running = snapshot.split(":")
    return int(xmax) % _XIDS, tuple(int(xid) % _XIDS for xid in running.split(",") if xid)


#: :func:`pg_new_rows` for a prepared statement: ``$1`` the mark's ``xmax``, ``$2`` its running ids.
_PG_NEW_ROWS_PREPARED = "(age(xmin) <= age($1) OR xmin = ANY($2))"
#: Which of the statements named ``%s`` this connection has prepared.
_PG_PREPARED = "SELECT name FROM pg_prepared_statements WHERE name = ANY(%s)"


def pg_new_rows(since: Since) -> str:
    """A condition true of every row written (inserted or updated) by a transaction that was running at
    ``since`` or began after it, whatever wrote it (a trigger, a function, a raw cursor, another
    connection): its ``xmin`` is ``xmax`` or later (``age()`` compares transaction ids as the server
    does, across their wraparound; a frozen row's age is the largest), or one of the running ids."""
    xmax, running = since
    condition = f"age(xmin) <= age('{xmax}'::xid)"
    if running:
        ids = ", ".join(f"'{xid}'::xid" for xid in running)
        condition += f" OR xmin IN ({ids})"
    return f"({condition})"


# -- WriteTracker: which tables a test wrote to --------------------------------------------------------------------

#: Leading white space and comments, which a statement may start with.
_COMMENTS = re.compile(r"(?:\s+|--[^\n]*|/\*(?:[^*]|\*(?!/))*\*/)*")
_READ = re.compile(
    r"(?:SELECT|VALUES|TABLE|SHOW|DESC|DESCRIBE|BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE"
    r"|SET)\b",
    re.I,
)
#: ``EXPLAIN`` and its options: what follows is read as the statement (which ``ANALYZE`` runs).
_EXPLAIN = re.compile(r"EXPLAIN(?:\s*\([^()]*\)|\s+(?:ANALY[SZ]E|VERBOSE)\b)*\s+", re.I)
#: What an SQLite authorizer is told of a statement that writes to a table (its first argument).
_SQLITE_WRITES = frozenset({sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE})


def _statement(sql: str) -> str | None:
    """``sql`` without its leading comments and its final ``;``, ``EXPLAIN`` taken off; None for several
    statements (a ``;`` before the end: perhaps inside a string, but then reading it as several is safe)."""
    sql = sql[_COMMENTS.match(sql).end() :].rstrip().rstrip(";")  # type: ignore[union-attr]  # matches always
    explain = _EXPLAIN.match(sql)
    if explain:
        sql = sql[explain.end() :]
    return None if ";" in sql else sql


class WriteTracker:
    """Watches what a test writes, async and sync, whatever writes it, and empties the tables written to.

    So a test's clean-up can leave alone the tables it never touched (data that wider fixtures made).
    Three sources, and a table counts as written if any names it:

    - the statements the database object runs (``aio_execute_sql``, ``execute_sql``), read: a write
      that succeeded names its table (``DELETE`` too); a statement that cannot be shown to be a read or
      a one-table write (DDL, ``WITH``, ``COPY``, ``MERGE``, ``CALL``, ``DO``, several statements in one
      string) counts as a write to every table;
    - on PostgreSQL, the server: :meth:`aio_mark` (or ``async with``, or :meth:`mark`) notes where its
      transaction ids stand, and at the clear a table holding a row inserted or updated since then is
      written, whoever wrote it: a trigger, a function (``SELECT add_item()``), ``EXPLAIN ANALYZE``, a
      raw cursor, another connection. Without a mark, every table counts as written;
    - on SQLite, an authorizer on the database's connections (peewee's sync one, those of its async
      pool): each table a statement writes, a trigger's too, raw cursors included;
    - on MySQL/MariaDB, what the database's connections send (peewee's sync one, those of its async
      pool, raw cursors included), read as above; at the clear the server tells what the writes set off:
      the tables its triggers write, those its foreign keys cascade into, and whether a name a statement
      called is a stored function (then every table counts as written).

    A database that is not a test database is refused when the tracker is made, and the models to clear
    must be bound to it, as for :func:`~peewee_async_testing.aio_clear_tables` (``allow_any_database`` too).

    Example::

        async with WriteTracker(database) as tracker:
            await Book.aio_create(title="notes", author=await Author.aio_create(name="ada"))
        assert tracker.written([Author, Book, User]) == [Author, Book]
        await tracker.aio_clear([Author, Book, User])
    """

    def __init__(self, database: Any, *, allow_any_database: bool = False) -> None:
        self.database = resolve_database(database, purpose="WriteTracker")
        self.allow_any_database = allow_any_database
        if not allow_any_database:
            refuse_unless_test_database(self.database, (), purpose="WriteTracker")
        self.tables: set[str] = set()
        self.everything = False
        self.called: set[str] = set()  # MySQL: the names the statements called, stored functions among them
        self._mysql = is_mysql(self.database)
        self.since: Since | None = None
        self._kinds: dict[str, str] = {}  # at the mark: each table's relkind ("" for none)
        self._target: tuple[str, dict[str, Any]] = ("", {})  # at the mark: where the database pointed
        #: Where the server's transaction ids stood at the end of the last :meth:`clear` (and where the database
        #: pointed), for the tracker of a later test to :meth:`resume` from; None if it could not tell.
        self.carried: tuple[tuple[str, dict[str, Any]], Since] | None = None
        self._undo: list[Callable[[], None]] = []

    def __enter__(self) -> WriteTracker:
        database = self.database
        for name, watching in (("aio_execute_sql", self._aio_watching), ("execute_sql", self._watching)):
            self._undo.append(set_attribute(database, name, watching(getattr(database, name))))
        if is_sqlite(database):
            self._authorize_connections()
        elif self._mysql:
            self._watch_connections()
        return self

    def __exit__(self, *exc_info: object) -> None:
        while self._undo:
            self._undo.pop()()

    async def __aenter__(self) -> WriteTracker:
        await self.aio_mark()
        return self.__enter__()

    async def __aexit__(self, *exc_info: object) -> None:
        self.__exit__(*exc_info)

    async def aio_mark(
        self, models: Iterable[type[peewee.Model]] | None = None, *, known: dict[str, str] | None = None
    ) -> None:
        """On PostgreSQL, note where the server's transaction ids stand (one round trip), so that the clear
        finds the rows written since, by any path; a no-op on SQLite and MySQL.

        It also notes which of the tables of ``models`` (by default every bound model) exist, unless
        ``known`` (a dict shared between trackers, filled by the first) already says: the clear checks
        that they still do, and when one appeared or went, forgets ``known``.
        """
        if is_postgres(self.database):
            sql, tables = self._mark_sql(models, known)
            rows = await self.database.aio_execute_sql(sql, (), fetch_results=fetchall)
            self._marked(rows[0], tables, known)

    def mark(self, models: Iterable[type[peewee.Model]] | None = None, *, known: dict[str, str] | None = None) -> None:
        """:meth:`aio_mark` through the synchronous connection."""
        if is_postgres(self.database):
            sql, tables = self._mark_sql(models, known)
            with sync_queries(self.database):
                self._marked(self.database.execute_sql(sql).fetchone(), tables, known)

    def resume(
        self,
        carried: tuple[tuple[str, dict[str, Any]], Since],
        models: Iterable[type[peewee.Model]],
        *,
        known: dict[str, str],
    ) -> bool:
        """Take as the mark what another tracker's clear :attr:`carried`, without a round trip: no write since
        that clear ended can precede it, so the clear finds them all (and those made between that clear and
        this tracker's start too). False, doing nothing, if the database points elsewhere since, or ``known``
        does not know every table of ``models``: :meth:`mark` then."""
        target, since = carried
        tables = [_quoted(self.database, model) for model in models]
        if not is_postgres(self.database) or target != self._where() or not all(table in known for table in tables):
            return False
        self._target, self.since, self._kinds = target, since, known
        return True

    def _mark_sql(
        self, models: Iterable[type[peewee.Model]] | None, known: dict[str, str] | None
    ) -> tuple[str, list[str]]:
        models = bound_models(self.database) if models is None else models
        tables = [_quoted(self.database, model) for model in models]
        if known is not None and all(table in known for table in tables):
            return _PG_SNAPSHOT, []
        return _pg_mark(tables), tables

    def _marked(self, row: tuple[Any, ...], tables: list[str], known: dict[str, str] | None) -> None:
        self._target = self._where()
        self.since = _pg_since(row[0])
        self._kinds = {} if known is None else known
        if tables:
            self._kinds.update(zip(tables, row[1], strict=True))

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

    def saw(self, sql: str | bytes) -> None:
        """Note what ``sql`` writes to."""
        if isinstance(sql, bytes):  # (PyMySQL's and aiomysql's connections take bytes too)
            sql = sql.decode(errors="replace")
        statement = _statement(sql)
        tables = None if statement is None else written_tables(statement)
        if tables is not None:
            self.tables.update(tables)
        elif statement is None or not _READ.match(statement):
            self.everything = True
        if self._mysql and statement is not None:  # a stored function among them may write anywhere
            self.called.update(called_names(statement, tables))

    def _authorized(self, action: int, table: str | None, *_: object) -> int:
        """The SQLite authorizer: note each table a statement (or a trigger it fires) writes to; allow all."""
        if action in _SQLITE_WRITES and table:
            self.tables.add(table)
        return sqlite3.SQLITE_OK

    def _authorize_connections(self) -> None:
        """Put :meth:`_authorized` on the SQLite database's sync connection (open, or opened later) and on
        each connection its async pool hands out while the tracker watches."""
        database, backend = self.database, self.database.pool_backend
        connect, acquire = database.connect, backend.acquire

        def authorize(connection: sqlite3.Connection) -> None:
            connection.set_authorizer(self._authorized)
            self._undo.append(functools.partial(_unauthorize, connection))

        def connect_watched(*args: Any, **kwargs: Any) -> Any:
            opened = connect(*args, **kwargs)
            if opened:
                authorize(database.connection())
            return opened

        async def acquire_watched() -> Any:
            connection = await acquire()
            set_authorizer = getattr(connection, "set_authorizer", None)  # aiosqlite 0.22 and later
            if set_authorizer is None:
                self.everything = True  # its writes cannot be seen
            else:
                await set_authorizer(self._authorized)
            return connection

        self._undo.append(set_attribute(database, "connect", connect_watched))
        self._undo.append(set_attribute(backend, "acquire", acquire_watched))
        if not database.is_closed():
            authorize(database.connection())

    def _watch_connections(self) -> None:
        """Watch what each connection of the MySQL database sends (``query``, under every cursor, raw ones too):
        peewee's sync connection (open, or opened later) and each one its async pool hands out meanwhile."""
        database, backend = self.database, self.database.pool_backend
        connect, acquire = database.connect, backend.acquire
        watched: set[int] = set()

        def watch(connection: Any, watching: Callable[[Any], Any]) -> None:
            if id(connection) not in watched:  # a connection back from the pool is watched already
                watched.add(id(connection))
                self._undo.append(set_attribute(connection, "query", watching(connection.query)))

        def connect_watched(*args: Any, **kwargs: Any) -> Any:
            opened = connect(*args, **kwargs)
            if opened:
                watch(database._state.conn, self._watching)
            return opened

        async def acquire_watched() -> Any:
            connection = await acquire()
            watch(connection, self._aio_watching)
            return connection

        self._undo.append(set_attribute(database, "connect", connect_watched))
        self._undo.append(set_attribute(backend, "acquire", acquire_watched))
        if not database.is_closed():
            watch(database._state.conn, self._watching)

    def written(self, models: Iterable[type[peewee.Model]]) -> list[type[peewee.Model]]:
        """The models among ``models`` whose tables the statements seen wrote to (all of them after one it
        could not read). On PostgreSQL the server's rows are read only by the clear."""
        return [model for model in models if self.everything or model._meta.table_name in self.tables]

    async def aio_clear(self, models: Iterable[type[peewee.Model]], *, sequences: bool = True) -> None:
        """Empty the tables among ``models`` written to so far (then forget them), with the ``delete``
        strategy, children first, in one round trip. ``sequences``: restart their auto-increment counters
        too.

        On PostgreSQL, each table is checked: it is emptied if it holds a row written since the mark (or
        any row, for a table the statements named, and for every table after a statement it could not
        read or without a mark); plain statements for the tables that existed at the mark, or (when one
        appeared or went since) a ``DO`` block that checks that each exists. On SQLite, ``DELETE`` for
        the tables written to, nothing if none. On MySQL, nothing if none; else one query of the
        catalogue (and one more for each step a trigger or a cascade leads on), then the ``DELETE`` s in
        one string, foreign key checks off and back as they were.
        """
        plan = self._plan(models, sequences, prepared=False)  # the pool's connections keep none of ours
        if plan is not None or seeds.restore_plan(self.database):  # (seed rows the test deleted: put back)
            await _aio_run(self.database, plan or _no_statements())

    def clear(self, models: Iterable[type[peewee.Model]], *, sequences: bool = True) -> None:
        """:meth:`aio_clear` through the synchronous connection.

        On a connection already open (which outlives the clear: the ``clear_tables`` fixture keeps one), the
        plain statements are prepared (named ``pwat_...``) the first time and kept: each clear after that
        only executes them, which costs about half as much.
        """
        self.carried = None
        plan = self._plan(models, sequences, prepared=not self.database.is_closed(), sync=True)
        if plan is not None or seeds.restore_plan(self.database):
            _run(self.database, plan or _no_statements())

    def _carry(self, since: Since) -> None:
        self.carried = (self._target, since)

    def _where(self) -> tuple[str, dict[str, Any]]:
        """Where the database object points: in words (no password), and its connection settings."""
        return describe(self.database), dict(self.database.connect_params)

    def _plan(
        self, models: Iterable[type[peewee.Model]], sequences: bool, *, prepared: bool, sync: bool = False
    ) -> Plan | None:
        if self.since is not None and self._where() != self._target:
            raise ConfigurationError(
                f"WriteTracker cannot empty the tables written since its mark in {self._target[0]}: the database "
                f"object was pointed at {describe(self.database)} in the meantime (by database.init() in the code "
                "under test?). Nothing was sent. Skip that init() under the tests."
            )
        models = list(models)
        named, seen_everything, seen, called = self.written(models), self.everything, self.tables, self.called
        everything = seen_everything or self.since is None
        self.tables, self.everything, self.called = set(), False, set()
        database, allow_any_database = self.database, self.allow_any_database
        if self._mysql:  # the statements' tables, and what writes to them set off
            if not (seen or called or seen_everything):
                return None
            checked = _guarded(database, models, purpose="WriteTracker", allow_any_database=allow_any_database)
            written = None if seen_everything else seen
            return mysql_written(database, checked, written, called, sequences, sync=sync)
        if is_postgres(database):  # any table may hold rows written by paths that no statement named
            checked = _guarded(database, models, purpose="WriteTracker", allow_any_database=allow_any_database)
            if not checked:
                return None
            if everything or self.since is None:
                return _statements(_pg_delete_block(database, checked, sequences))
            new_rows = pg_new_rows(self.since)
            tables = {model: _quoted(database, model) for model in checked}

            def block() -> str:
                return _pg_delete_block(database, checked, sequences, new_rows=new_rows, named=named)

            kinds = self._kinds
            if not all(table in kinds for table in tables.values()):
                return _statements(block())
            present = [model for model in checked if kinds[tables[model]] in ("r", "p")]  # a view is left alone
            missing = [table for table in tables.values() if not kinds[table]]
            if prepared:
                where = tuple(tables[model] for model in present)  # (a model may have moved since: schema)
                statements = _prepared(database, tuple(present), where, sequences, frozenset(named), tuple(missing))
                first = isinstance(database, peewee_async.Psycopg3Database)  # (psycopg2 returns the last result)
                return _executed(statements, self.since, block, kinds.clear, self._carry, first=first)
            plain = _pg_delete_new(database, present, sequences, new_rows=new_rows, named=named, missing=missing)
            return _statements("; ".join(plain), block, kinds.clear)
        if not named:
            return None
        named = _guarded(database, named, purpose="WriteTracker", allow_any_database=allow_any_database)
        return _plan(database, named, "delete", sequences=sequences)


@functools.lru_cache(maxsize=64)
def _prepared(
    database: Any,
    present: tuple[type[peewee.Model], ...],
    where: tuple[str, ...],
    sequences: bool,
    named: frozenset[type[peewee.Model]],
    missing: tuple[str, ...],
) -> tuple[tuple[str, str], ...]:
    """The plain statements of a clear as :func:`_executed` prepares them, each with its name (after its text):
    made once for each set of tables, as a test's clear is the same as the last one's, nearly always. ``where``,
    the tables of ``present`` (quoted) as they are now, is part of the key alone: a model given another schema or
    table name since (an app's tenant switched by a fixture) gets the statements of where it is now."""
    plain = _pg_delete_new(
        database, list(present), sequences, new_rows=_PG_NEW_ROWS_PREPARED, named=named, missing=missing
    )
    return tuple(("pwat_" + hashlib.sha1(statement.encode()).hexdigest()[:20], statement) for statement in plain)


def _statements(sql: str, fallback: Callable[[], str] | None = None, forget: Callable[[], None] | None = None) -> Plan:
    """A plan of one statement, ``sql``, that returns no rows; if it fails, ``fallback()`` instead (for plain
    statements that fail when a table appeared or went since the mark: the ``DO`` block checks each), and
    ``forget()`` what was known of the tables."""
    try:
        yield sql, (), False
    except peewee.DatabaseError:
        if fallback is None:
            raise
        if forget is not None:
            forget()
        yield fallback(), (), False


def _executed(
    statements: tuple[tuple[str, str], ...],
    since: Since,
    fallback: Callable[[], str],
    forget: Callable[[], None],
    carry: Callable[[Since], None],
    *,
    first: bool,
) -> Plan:
    """:func:`_statements` of ``statements`` (named, with :data:`_PG_NEW_ROWS_PREPARED`'s parameters) as prepared
    statements of the connection, in one round trip once it has them, with a :data:`_PG_SNAPSHOT` where the
    synchronous driver returns it (``first``: psycopg 3 returns the first result, psycopg 2 the last), given to
    ``carry`` (the clear itself writes no row). When an ``EXECUTE`` fails, it prepares those the connection lacks
    (by name) and executes them all again; if that fails too (a table appeared or went), ``fallback()``."""
    if not statements:
        return
    names = [name for name, _ in statements]
    xmax, running = since
    arguments = f"('{xmax}'::xid, '{{{','.join(map(str, running))}}}'::xid[])"
    execute = "; ".join(f"EXECUTE {name}{arguments}" for name in names)

    def around(statements: list[str]) -> str:
        return "; ".join([_PG_SNAPSHOT, *statements] if first else [*statements, _PG_SNAPSHOT])

    try:
        rows = yield around([execute]), (), True
    except peewee.DatabaseError:  # the connection lacks one (first clear on it, DEALLOCATE), or a table changed
        rows = yield _PG_PREPARED, (names,), True
        have = {name for (name,) in rows or ()}
        prepare = [f"PREPARE {name}(xid, xid[]) AS {statement}" for name, statement in statements if name not in have]
        try:
            rows = yield around([*prepare, execute]), (), True
        except peewee.DatabaseError:
            forget()
            yield fallback(), (), False
            return
    snapshot = rows[0][0] if rows else None
    if isinstance(snapshot, str) and _SNAPSHOT.fullmatch(snapshot):
        carry(_pg_since(snapshot))


def _no_statements() -> Plan:
    yield from ()


def _allow(*_: object) -> int:
    return sqlite3.SQLITE_OK


def _unauthorize(connection: sqlite3.Connection) -> None:
    """Take the authorizer off ``connection``, unless it was closed meanwhile (or belongs to another thread).
    (Python 3.10 cannot take one off: ``None`` would deny every statement. It gets one that allows all.)"""
    with contextlib.suppress(sqlite3.ProgrammingError):
        connection.set_authorizer(None if sys.version_info >= (3, 11) else _allow)
