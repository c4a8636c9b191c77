"""Count and match the statements code sends to a database: :func:`capture_queries` and the assertions on it.

Example::

    async with assert_num_queries(database, 1):
        await User.aio_get(User.id == 1)

    async with capture_queries(database) as captured:
        await User.aio_create(name="ada")
    assert "INSERT" in captured[0].sql

What is seen, and what is not, is :mod:`~peewee_async_testing.recording`'s job: every statement of the code
under test on the database, from every path and every task started inside, with or without a test transaction;
not this library's own. The code's own transaction statements (``BEGIN``, ``SAVEPOINT``...) are listed in
:attr:`CapturedQueries.all` and never counted.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Awaitable, Callable, Iterator, Sequence
from itertools import groupby
from typing import Any, TypeVar, overload

import peewee

from ._database import is_postgres, resolve_database
from .patches import set_attributes
from .recording import (
    CapturedQuery,
    CapturingAioConnection,
    Recorder,
    capturing_execute_sql,
    close_capture,
    open_capture,
)

__all__ = [
    "CapturedQueries",
    "CapturedQuery",
    "QueryAssertion",
    "QueryCapture",
    "assert_max_num_queries",
    "assert_num_queries",
    "assert_queries_match",
    "capture_queries",
]

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

#: How many statements a failure lists, and how much of each statement's SQL and parameters it shows.
LISTED, SQL_SHOWN, PARAMS_SHOWN = 50, 300, 120

OPEN_ALREADY = "This {what} is open already: make one for each `async with` (a decorator makes one per call)."
NOT_ASYNC = "{what} decorates async functions only, and was given {function!r}."


class CapturedQueries(Sequence[CapturedQuery]):
    """The statements that count, in the order they ran: ``len(captured)``, ``captured[i].sql``, ``.params``,
    ``.duration``. It fills while the capture is open. :attr:`all` has the code's transaction statements too."""

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder

    @property
    def database(self) -> Any:
        """The database whose statements these are."""
        return self._recorder.database

    @property
    def all(self) -> list[CapturedQuery]:
        """Every statement, the transaction statements of the code under test among them (marked ``transaction``)."""
        return list(self._recorder.all)

    def __len__(self) -> int:
        return len(self._recorder.counted)

    @overload
    def __getitem__(self, index: int) -> CapturedQuery: ...
    @overload
    def __getitem__(self, index: slice) -> list[CapturedQuery]: ...
    def __getitem__(self, index: int | slice) -> CapturedQuery | list[CapturedQuery]:
        return self._recorder.counted[index]

    def __iter__(self) -> Iterator[CapturedQuery]:
        return iter(list(self._recorder.counted))

    def __repr__(self) -> str:
        return f"<CapturedQueries: {len(self)} on {_name(self.database)}>"

    def report(self, matched: Callable[[CapturedQuery], bool] | None = None) -> str:
        """The statements, numbered (the transaction statements unnumbered), then what repeats: the body of
        every failure message. ``matched``: the statements to mark."""
        lines, number = [], 0
        for query in self._recorder.all[:LISTED]:
            if query.transaction:
                lines.append(f"   -  {_short(query.sql)}   (transaction control: not counted)")
                continue
            number += 1
            mark = "  <- matched" if matched is not None and matched(query) else ""
            params = "" if query.params in (None, (), []) else f"   params: {_params(query.params)}"
            lines.append(f"{number:4}. {_short(query.sql)}{params}{mark}")
        if len(self._recorder.all) > LISTED:
            lines.append(f"   ... and {len(self._recorder.all) - LISTED} more")
        return "\n".join([*lines, *repeats(self._recorder.counted)])


def repeats(queries: Sequence[CapturedQuery], shown: int = 3) -> list[str]:
    """What a reader should notice: the same statement run again and again (N+1 queries), biggest first."""
    runs: dict[str, list[tuple[int, Any]]] = {}  # each statement's numbers and parameters, by its SQL
    for number, query in enumerate(queries, start=1):
        runs.setdefault(" ".join(query.sql.split()), []).append((number, query.params))
    notes = []
    for sql, ran_as in sorted(runs.items(), key=lambda item: -len(item[1]))[:shown]:
        if len(ran_as) < 2:
            break
        where = [number for number, _ in ran_as]
        verb = sql.split(" ", 1)[0].upper()
        ran = f"The same {verb} ran {len(where)} times"
        if all(params == ran_as[0][1] for _, params in ran_as):
            notes.append(f"{ran} with the same parameters (queries {_ranges(where)}): one result, read again?")
        elif verb == "SELECT":
            notes.append(
                f"{ran} with different parameters (queries {_ranges(where)}): N+1? Read the rows in one query "
                "(a join, prefetch(), or WHERE ... IN)."
            )
        else:
            notes.append(
                f"{ran} with different parameters (queries {_ranges(where)}): one statement for all of them "
                "(insert_many(), an UPDATE with a WHERE for all)?"
            )
    return notes


class QueryCapture:
    """``async with capture_queries(database) as captured``: what
    :func:`~peewee_async_testing.capture_queries` returns."""

    what = "capture_queries()"

    def __init__(self, database: Any) -> None:
        # A decorator is made at import, often before the database (or its proxy) is initialised: checked here,
        # resolved when the block opens.
        if not isinstance(database, peewee.DatabaseProxy):
            resolve_database(database, purpose=self.what, uninitialised=True)
        self._database = database
        self._opened: tuple[Any, ...] | None = None

    async def __aenter__(self) -> CapturedQueries:
        if self._opened is not None:
            raise RuntimeError(OPEN_ALREADY.format(what=self.what))
        database = resolve_database(self._database, purpose=self.what)
        recorder = Recorder(database)
        postgres = is_postgres(database)
        beneath = {name: getattr(database, name) for name in ("aio_connection", "execute_sql")}
        undo = set_attributes(
            database,
            {
                "aio_connection": CapturingAioConnection(database, beneath["aio_connection"], postgres),
                "execute_sql": capturing_execute_sql(database, beneath["execute_sql"], postgres),
            },
        )
        self._opened = (recorder, open_capture(recorder), undo)
        return CapturedQueries(recorder)

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc_info: Any) -> None:
        __tracebackhide__ = True  # a failure points at the test's `async with`
        assert self._opened is not None
        (recorder, token, undo), self._opened = self._opened, None
        undo()
        close_capture(token, recorder)
        if exc_type is None:
            self.check(CapturedQueries(recorder))

    def check(self, captured: CapturedQueries) -> None:
        """Raise :class:`AssertionError` if the captured statements are not as expected (a capture expects nothing)."""


class QueryAssertion(QueryCapture):
    """An assertion on the statements a block runs, checked when it ends without an error; also a decorator of
    async functions (a fresh capture for each call). What :func:`~peewee_async_testing.assert_num_queries` and
    the others return."""

    def __init__(
        self,
        database: Any,
        what: str,
        test: Callable[[CapturedQueries], str | None],
        marked: Callable[[CapturedQuery], bool] | None = None,
    ) -> None:
        self.what = what
        super().__init__(database)
        self._test, self._marked = test, marked

    def check(self, captured: CapturedQueries) -> None:
        __tracebackhide__ = True
        problem = self._test(captured)
        if problem is not None:
            raise AssertionError(f"{problem}\n{captured.report(self._marked)}")

    def copy(self) -> QueryAssertion:
        return QueryAssertion(self._database, self.what, self._test, self._marked)

    def __call__(self, function: F) -> F:
        if not inspect.iscoroutinefunction(function):
            raise TypeError(NOT_ASYNC.format(what=self.what, function=function))

        @functools.wraps(function)
        async def checked(*args: Any, **kwargs: Any) -> Any:
            async with self.copy():
                return await function(*args, **kwargs)

        return checked  # type: ignore[return-value]


def capture_queries(database: Any) -> QueryCapture:
    """Record the statements ``database`` runs inside the block: ``async with capture_queries(database) as
    captured``. See :class:`CapturedQueries`."""
    return QueryCapture(database)


def assert_num_queries(database: Any, expected: int) -> QueryAssertion:
    """Assert that the block runs exactly ``expected`` statements on ``database`` (``async with``, or as a
    decorator). The failure lists them, numbered, with their parameters."""
    _count_argument(expected, "assert_num_queries")

    def test(captured: CapturedQueries) -> str | None:
        if len(captured) == expected:
            return None
        return f"{_queries(len(captured))} ran on {_name(captured.database)}, {expected} expected:"

    return QueryAssertion(database, "assert_num_queries()", test)


def assert_max_num_queries(database: Any, maximum: int) -> QueryAssertion:
    """Assert that the block runs at most ``maximum`` statements on ``database``; see :func:`assert_num_queries`."""
    _count_argument(maximum, "assert_max_num_queries")

    def test(captured: CapturedQueries) -> str | None:
        if len(captured) <= maximum:
            return None
        return f"{_queries(len(captured))} ran on {_name(captured.database)}, at most {maximum} expected:"

    return QueryAssertion(database, "assert_max_num_queries()", test)


def assert_queries_match(database: Any, pattern: str | re.Pattern[str], count: int | None = None) -> QueryAssertion:
    """Assert that statements the block runs on ``database`` match the regular expression ``pattern``
    (:func:`re.search`): at least one, or exactly ``count``. The failure marks the ones that matched."""
    if count is not None:
        _count_argument(count, "assert_queries_match")
    regex = re.compile(pattern)

    def matches(query: CapturedQuery) -> bool:
        return regex.search(query.sql) is not None

    def test(captured: CapturedQueries) -> str | None:
        matched = sum(1 for query in captured if matches(query))
        if matched == count or (count is None and matched > 0):
            return None
        expected = "at least 1" if count is None else str(count)
        where = _name(captured.database)
        return f"{_queries(matched)} matched {regex.pattern!r} on {where}, {expected} expected; all that ran:"

    return QueryAssertion(database, "assert_queries_match()", test, matches)


def _count_argument(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"{name}() needs a number of queries (an int, 0 or more), and was given {value!r}.")


def _queries(count: int) -> str:
    return f"{count} {'query' if count == 1 else 'queries'}"


def _name(database: Any) -> str:
    """The database as a failure names it: its class and database name (never its connection parameters)."""
    return f"{type(database).__name__} {database.database!r}"


def _short(sql: str) -> str:
    return _cut(" ".join(sql.split()), SQL_SHOWN)


def _params(params: Any) -> str:
    return _cut(repr(params), PARAMS_SHOWN)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _ranges(numbers: list[int]) -> str:
    """``[2, 3, 4, 7]`` as ``2-4, 7``."""
    parts = []
    for _, run in groupby(enumerate(numbers), key=lambda pair: pair[1] - pair[0]):
        values = [number for _, number in run]
        parts.append(str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}")
    return ", ".join(parts)
