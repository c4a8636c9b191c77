"""Where the statements of the code under test are seen, for :func:`~peewee_async_testing.capture_queries`.

A capture is open in a context (a context variable: tasks started inside it inherit it) and records the
statements sent to its database there. They are seen in two places: the test's shared connection inside a
:class:`~peewee_async_testing.TransactionTestCase` (its cursors, its driver-level ``execute()`` and the
savepoints that stand for the code's own transactions), and outside every block, a proxy that the capture
puts around the connections ``database.aio_connection()`` hands out. The library's own statements (its
``BEGIN``, ``ROLLBACK``, savepoints, the statements of ``reset_sequences``) go past both, and are not seen.
"""

from __future__ import annotations

import contextvars
import time
import types
from collections.abc import Awaitable, Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from peewee_async.connection import connection_context

from ._database import is_mysql
from .exceptions import PeeweeAsyncTestingError
from .statements import control_statements

#: MySQL's SERVER_STATUS_NO_BACKSLASH_ESCAPES: the sql_mode of that name is on (a backslash is no escape).
_NO_BACKSLASH_ESCAPES = 512

T = TypeVar("T")


@dataclass(frozen=True)
class CapturedQuery:
    """One statement the database ran inside :func:`~peewee_async_testing.capture_queries`."""

    #: The SQL text, with placeholders (``%s``, ``?``) where the parameters go.
    sql: str
    #: The parameters sent with it, as the code gave them (a tuple, a list, a dict, or None).
    params: Any
    #: How long it took, in seconds: from sending it to the driver's answer (without fetching the rows).
    duration: float
    #: Whether it controls a transaction of the code under test (``BEGIN``, ``COMMIT``, ``SAVEPOINT``,
    #: ``RELEASE``, ``ROLLBACK``): listed in :attr:`CapturedQueries.all`, never counted. Inside a test
    #: transaction an ``aio_atomic()`` runs on savepoints, outside it on ``BEGIN``/``COMMIT``: not counting them
    #: keeps a count the same in both.
    transaction: bool = False


class Recorder:
    """What one capture records: every statement, and those that count (not controlling a transaction)."""

    def __init__(self, database: Any) -> None:
        self.database = database
        self.all: list[CapturedQuery] = []
        self.counted: list[CapturedQuery] = []

    def add(self, query: CapturedQuery) -> None:
        self.all.append(query)
        if not query.transaction:
            self.counted.append(query)


#: The captures open in the current context, innermost last.
_open: contextvars.ContextVar[tuple[Recorder, ...]] = contextvars.ContextVar("open_captures", default=())


def capturing() -> bool:
    """Whether a capture is open in the current context (nearly free: asked on every statement)."""
    return bool(_open.get())


def recorders(database: Any) -> list[Recorder]:
    """The captures open in the current context that record ``database``'s statements."""
    return [recorder for recorder in _open.get() if recorder.database is database]


def open_capture(recorder: Recorder) -> contextvars.Token[tuple[Recorder, ...]]:
    return _open.set((*_open.get(), recorder))


def close_capture(token: contextvars.Token[tuple[Recorder, ...]], recorder: Recorder) -> None:
    """Take ``recorder`` out of the current context (where it was opened; elsewhere, out of the tuple)."""
    try:
        _open.reset(token)
    except ValueError:  # closed in another context than it was opened in
        _open.set(tuple(open_one for open_one in _open.get() if open_one is not recorder))


def sql_text(sql: Any, connection: Any) -> str | None:
    """The SQL text of what the code handed a driver: a string, bytes, or psycopg 3's composed SQL."""
    if isinstance(sql, str):
        return sql
    if isinstance(sql, bytes):
        return sql.decode(errors="replace")
    as_string = getattr(sql, "as_string", None)
    return str(as_string(connection)) if as_string is not None else None


def callproc_sql(name: str, params: Any) -> str:
    """The statement aiopg's ``cursor.callproc(name, params)`` sends, as a capture shows it."""
    if isinstance(params, dict):
        return f"SELECT * FROM {name}({', '.join(f'{key} := %({key})s' for key in params)})"
    return f"SELECT * FROM {name}({', '.join(['%s'] * len(params or ()))})"


def params_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The parameters of a driver's ``execute(sql, params)`` call, however they were passed."""
    if args:
        return args[0]
    names = ("params", "parameters", "args", "seq_of_parameters")
    return next((kwargs[name] for name in names if name in kwargs), None)


@contextmanager
def measured(database: Any, sql: Any, params: Any, *, connection: Any, postgres: bool) -> Iterator[None]:
    """Time the block (the statement ``sql`` going to the server) and record it in the context's captures of
    ``database``, also when it fails there; not when this library refused it before sending, nor where peewee-async
    refused a synchronous query (its ``AssertionError``).
    """
    started = time.perf_counter()
    try:
        yield
    except (PeeweeAsyncTestingError, AssertionError):
        raise
    except BaseException:
        record(database, sql, params, time.perf_counter() - started, connection, postgres)
        raise
    record(database, sql, params, time.perf_counter() - started, connection, postgres)


async def timed(database: Any, sql: Any, params: Any, send: Awaitable[T], *, connection: Any, postgres: bool) -> T:
    """Await ``send``, :func:`measured`."""
    with measured(database, sql, params, connection=connection, postgres=postgres):
        return await send


def watched(database: Any, sql: Any, params: Any, sent: Any, *, connection: Any, postgres: bool) -> Any:
    """:func:`timed` for what a driver's ``execute()`` returns: a coroutine (psycopg 3), or aiosqlite's ``Result``,
    which is also an async context manager, and stays one."""
    coroutine = timed(database, sql, params, sent, connection=connection, postgres=postgres)
    return coroutine if type(sent) is types.CoroutineType else type(sent)(coroutine)


def record(
    database: Any,
    sql: Any,
    params: Any,
    duration: float,
    connection: Any,
    postgres: bool,
) -> None:
    """Add a statement to every capture of ``database`` open in the current context."""
    targets = recorders(database)
    if not targets:
        return
    text = sql_text(sql, connection)
    shown = text if text is not None else repr(sql)
    found = None if text is None else _scan(database, text, connection, postgres)
    transaction = found is not None and all(kind is not None for _, _, kind in found)
    query = CapturedQuery(shown, params, duration, transaction)
    for recorder in targets:
        recorder.add(query)


def _scan(database: Any, text: str, connection: Any, postgres: bool) -> list[tuple[int, int, str | None]] | None:
    """The transaction statements of ``text``, in the dialect of ``database``: on MySQL its syntax (``START
    TRANSACTION``, ``SET autocommit``, backticks, ``#`` comments, several statements in one string)."""
    if is_mysql(database):
        status = getattr(connection, "server_status", 0)  # (the synchronous path: no connection, the default)
        backslashes = "\\" in text and not status & _NO_BACKSLASH_ESCAPES
        return control_statements(text, postgres=False, backslashes=backslashes, mysql=True)
    return control_statements(text, postgres=postgres)


class CapturingAioConnection:
    """Stands in for ``database.aio_connection`` while a capture is open: outside every test transaction, the
    connection it hands out (and puts in peewee-async's connection context, where ``aio_begin()`` finds it) is
    a :class:`RecordingConnection`. In a context without a capture of the database, ``beneath`` alone serves."""

    def __init__(self, database: Any, beneath: Callable[[], Any], postgres: bool) -> None:
        self._database, self._beneath, self._postgres = database, beneath, postgres

    def __call__(self) -> Any:
        scope = self._beneath()
        return _Scope(self._database, scope, self._postgres) if recorders(self._database) else scope


class _Scope:
    """One ``async with database.aio_connection()`` under a capture."""

    def __init__(self, database: Any, scope: Any, postgres: bool) -> None:
        self._database, self._scope, self._postgres = database, scope, postgres
        self._swapped: tuple[Any, Any, RecordingConnection] | None = None

    async def __aenter__(self) -> Any:
        from .connection import SharedConnection

        connection = await self._scope.__aenter__()
        if isinstance(connection, (RecordingConnection, SharedConnection)):
            return connection  # recorded already: a proxy, or the shared connection of a test transaction
        proxy = RecordingConnection(connection, self._database, self._postgres)
        context = connection_context.get()
        if context is not None and context.connection is connection:
            context.connection = proxy
            self._swapped = (context, connection, proxy)
        return proxy

    async def __aexit__(self, *exc_info: Any) -> Any:
        swapped, self._swapped = self._swapped, None
        if swapped is not None and swapped[0].connection is swapped[2]:
            swapped[0].connection = swapped[1]  # peewee-async gives its pool the driver's connection back
        return await self._scope.__aexit__(*exc_info)


class RecordingConnection:
    """A driver's connection whose statements the context's captures record: its cursors' and its own
    ``execute()``. Everything else is the driver's."""

    def __init__(self, raw: Any, database: Any, postgres: bool) -> None:
        self.raw, self._database, self._postgres = raw, database, postgres

    def cursor(self, *args: Any, **kwargs: Any) -> _CursorScope | _RecordingCursor:
        scope = self.raw.cursor(*args, **kwargs)
        if hasattr(scope, "execute"):  # psycopg 3 hands out the cursor itself, used with or without `async with`
            return _RecordingCursor(self, scope)
        return _CursorScope(self, scope)

    def watched(self, sql: Any, args: tuple[Any, ...], kwargs: dict[str, Any], sent: Any) -> Any:
        params = params_of(args, kwargs)
        return watched(self._database, sql, params, sent, connection=self.raw, postgres=self._postgres)

    def execute(self, sql: Any, *args: Any, **kwargs: Any) -> Any:
        return self.watched(sql, args, kwargs, self.raw.execute(sql, *args, **kwargs))

    def executemany(self, sql: Any, *args: Any, **kwargs: Any) -> Any:
        return self.watched(sql, args, kwargs, self.raw.executemany(sql, *args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


class _CursorScope:
    """``connection.cursor()``: ``async with`` it, or (aiopg) await it."""

    def __init__(self, connection: RecordingConnection, scope: Any) -> None:
        self._connection, self._scope = connection, scope

    async def __aenter__(self) -> _RecordingCursor:
        return _RecordingCursor(self._connection, await self._scope.__aenter__())

    async def __aexit__(self, *exc_info: Any) -> Any:
        return await self._scope.__aexit__(*exc_info)

    def __await__(self) -> Generator[Any, None, _RecordingCursor]:
        return self._opened().__await__()

    async def _opened(self) -> _RecordingCursor:
        return _RecordingCursor(self._connection, await self._scope)


class _RecordingCursor:
    def __init__(self, connection: RecordingConnection, cursor: Any) -> None:
        self._connection, self._cursor = connection, cursor

    async def __aenter__(self) -> _RecordingCursor:
        await self._cursor.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        return await self._cursor.__aexit__(*exc_info)

    async def execute(self, sql: Any, *args: Any, **kwargs: Any) -> Any:
        return await self._connection.watched(sql, args, kwargs, self._cursor.execute(sql, *args, **kwargs))

    async def executemany(self, sql: Any, *args: Any, **kwargs: Any) -> Any:
        return await self._connection.watched(sql, args, kwargs, self._cursor.executemany(sql, *args, **kwargs))

    async def callproc(self, name: str, *args: Any, **kwargs: Any) -> Any:  # aiopg
        sql = callproc_sql(name, params_of(args, kwargs))
        return await self._connection.watched(sql, args, kwargs, self._cursor.callproc(name, *args, **kwargs))

    def __aiter__(self) -> Any:
        return self._cursor.__aiter__()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


def capturing_execute_sql(database: Any, beneath: Callable[..., Any], postgres: bool) -> Callable[..., Any]:
    """Stands in for ``database.execute_sql`` (peewee's synchronous path) while a capture is open: that of a capture
    open already, as it records for every capture in the context (a second would record each statement twice)."""
    if getattr(beneath, "records_captures", False):
        return beneath

    def execute_sql(sql: Any, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        if not recorders(database):
            return beneath(sql, params, *args, **kwargs)
        with measured(database, sql, params, connection=None, postgres=postgres):
            return beneath(sql, params, *args, **kwargs)

    execute_sql.records_captures = True  # type: ignore[attr-defined]
    return execute_sql
