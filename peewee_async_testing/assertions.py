"""Row assertions: check that a table holds, lacks or counts the rows that match some conditions.

Each assertion counts the matching rows with one ``SELECT COUNT(*)`` through the database's async API, so it runs
on the connection of an active :class:`~peewee_async_testing.TransactionTestCase` and sees its uncommitted rows,
and works as well without one. Only when it fails does it ask for more, to show the near miss: the table's row
count and the five rows that meet the most conditions, ranked by the database (``ORDER BY`` the number of
conditions met, ``LIMIT 5``): never more than five rows reach Python, however large the table.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import peewee
from peewee_async.databases import AioDatabase, fetchone

from ._database import _described, resolve_database
from .exceptions import ConfigurationError

#: The most rows a failure message shows.
SHOWN = 5
#: The longest repr of a value in a failure message; a longer one is cut.
WIDEST = 60


async def assert_database_has(
    target: type[peewee.Model] | str, /, *expressions: Any, database: Any = None, **where: Any
) -> None:
    """Assert that at least one row of ``target`` matches every condition.

    :param target: a peewee model (queried on its own database) or a table name (then ``database=`` is needed).
    :param expressions: peewee expressions, such as ``User.age > 3`` (for a table name,
        ``peewee.Table("user").c.age > 3``).
    :param database: the peewee-async database to query; by default the model's. A column named ``database``
        is given as an expression instead: ``User.database == "main"``.
    :param where: column equality, by field name for a model (``author=ada`` or ``author_id=1`` for a foreign
        key), by column name for a table; ``None`` matches NULL.
    :raises AssertionError: saying what was searched, how many rows matched, and the rows that come closest.

    Example::

        await User.aio_create(name="ada")
        await assert_database_has(User, User.name.startswith("a"), name="ada")
    """
    __tracebackhide__ = True
    search = _Search.of(target, expressions, database, where)
    found = await search.count()
    if found == 0:
        raise AssertionError(await search.failure("at least one row", found))


async def assert_database_missing(
    target: type[peewee.Model] | str, /, *expressions: Any, database: Any = None, **where: Any
) -> None:
    """Assert that no row of ``target`` matches every condition; the arguments are those of
    :func:`assert_database_has`. On failure the message shows the rows that match.

    Example::

        await assert_database_missing(User, name="ada")
    """
    __tracebackhide__ = True
    search = _Search.of(target, expressions, database, where)
    found = await search.count()
    if found != 0:
        raise AssertionError(await search.failure("no row", found))


async def assert_database_count(
    target: type[peewee.Model] | str, n: int, /, *expressions: Any, database: Any = None, **where: Any
) -> None:
    """Assert that exactly ``n`` rows of ``target`` match every condition; the other arguments are those of
    :func:`assert_database_has`.

    Example::

        await assert_database_count(User, 0, User.name.startswith("z"))
    """
    __tracebackhide__ = True
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise TypeError(f"assert_database_count() needs the expected number of rows, an int >= 0, and got {n!r}.")
    search = _Search.of(target, expressions, database, where)
    found = await search.count()
    if found != n:
        raise AssertionError(await search.failure(f"{n} row{'' if n == 1 else 's'}", found))


@dataclass
class _Search:
    """One search: the table, the database that holds it, and the conditions, each with how it reads."""

    database: AioDatabase
    source: Any  # a peewee model class, or a peewee.Table
    label: str
    conditions: list[Any]
    described: list[str]
    columns: list[str]  # the where columns: shown first in a row

    @classmethod
    def of(cls, target: Any, expressions: Sequence[Any], database: Any, where: dict[str, Any]) -> _Search:
        """Check the arguments of an assertion and turn them into a search, before any query."""
        source: Any
        if isinstance(target, type) and issubclass(target, peewee.Model):
            if database is None and target._meta.database is None:
                raise ConfigurationError(
                    f"{target.__name__} is bound to no database: set `database` in its Meta, or pass the database "
                    f"to search as `database=`."
                )
            db = resolve_database(target._meta.database if database is None else database, purpose="A row assertion")
            source, label, columns = target, target.__name__, cls._fields(target, where)
        elif isinstance(target, str):
            if database is None:
                raise TypeError(
                    f"A row assertion on the table name {target!r} needs the database that holds it: pass it as "
                    "`database=`, or pass the model instead of the table name."
                )
            db = resolve_database(database, purpose="A row assertion")
            source, label = peewee.Table(target), f"table {target!r}"
            columns = {name: peewee.Column(source, name) for name in where}
        else:
            raise TypeError(
                f"A row assertion searches a peewee model class or a table name (str), and was given "
                f"{_described(target)}."
            )
        for expression in expressions:
            if not isinstance(expression, peewee.Node):
                raise TypeError(
                    f"The positional conditions of a row assertion are peewee expressions, such as "
                    f"`User.age > 3`, and one is {expression!r} ({_described(expression)}): give column "
                    "equality as keyword arguments."
                )
        conditions = [column == value for column, value in zip(columns.values(), where.values(), strict=True)]
        described = [
            f"{name} IS NULL" if value is None else f"{name} == {_short(value)}" for name, value in where.items()
        ]
        described += [_sql(db, expression) for expression in expressions]
        return cls(db, source, label, [*conditions, *expressions], described, list(where))

    @staticmethod
    def _fields(model: Any, where: dict[str, Any]) -> dict[str, Any]:
        """The model's field of each where name (a foreign key also by its ``_id`` name), or a clear error."""
        unknown = [name for name in where if name not in model._meta.combined]
        if unknown:
            known = ", ".join(field.name for field in model._meta.sorted_fields)
            raise TypeError(
                f"{model.__name__} has no field {', '.join(map(repr, unknown))}; its fields are: {known}. "
                "Give a column that is not a field as an expression (`peewee.SQL(...)`)."
            )
        return {name: model._meta.combined[name] for name in where}

    def _select(self, *columns: Any) -> Any:
        query = self.source.select(*columns)
        return query.where(*self.conditions) if self.conditions else query

    async def count(self) -> int:
        """How many rows meet every condition."""
        (found,) = await self.database.aio_execute(self._select(peewee.fn.COUNT(peewee.SQL("*"))), fetchone)
        return int(found)

    async def failure(self, expected: str, found: int) -> str:
        """The failure message: what was searched, what was found, and the rows that come closest."""
        searched = f" where {' and '.join(self.described)}" if self.described else ""
        lines = [f"Expected {expected} of {self.label}{searched}, found {found}."]
        (total,) = await self.database.aio_execute(self.source.select(peewee.fn.COUNT(peewee.SQL("*"))), fetchone)
        if not total:
            lines.append("The table is empty.")
            return "\n".join(lines)
        rows = await self._closest()
        if self.conditions:
            some = "closest first" if total <= SHOWN else f"the {SHOWN} closest"
        else:
            some = "all of them" if total <= SHOWN else f"the first {SHOWN}"
        lines.append(f"The table has {total} row{'' if total == 1 else 's'}; {some}:")
        for values, met in rows:
            missed = [described for described, ok in zip(self.described, met, strict=True) if not ok]
            shown_row = ", ".join(f"{name}={_short(value)}" for name, value in values.items())
            lines.append(f"  {shown_row}" + (f"  (not met: {'; '.join(missed)})" if missed else ""))
        return "\n".join(lines)

    async def _closest(self) -> list[tuple[dict[str, Any], list[bool]]]:
        """The rows that meet the most conditions, at most :data:`SHOWN`, ranked by the database: each row's values
        (the where columns first) and which conditions it meets. Closest are the rows with the most where columns
        equal, then the most expressions true."""
        met = [peewee.Case(None, [(condition, peewee.SQL("1"))], peewee.SQL("0")) for condition in self.conditions]
        model = not isinstance(self.source, peewee.Table)
        fields = self.source._meta.sorted_fields if model else []
        # The row's columns first, then the conditions met: MySQL takes a bare `*` only as the first column.
        query = self.source.select(*(fields or [peewee.SQL("*")]), *met)
        equal, other = met[: len(self.columns)], met[len(self.columns) :]
        closeness = [functools.reduce(operator.add, terms).desc() for terms in (equal, other) if terms]
        first_column = peewee.SQL("1")  # the last tie-breaker: the table's first column (often its id)
        query = query.order_by(*closeness, first_column)
        rows, names = await self.database.aio_execute(query.limit(SHOWN), _rows_and_names)
        closest = []
        for row in rows:
            width = len(row) - len(met)
            values = list(row[:width])
            if model:
                values = [field.python_value(value) for field, value in zip(fields, values, strict=True)]
                by_name = dict(zip((field.name for field in fields), values, strict=True))
            else:
                by_name = dict(zip(names[:width], values, strict=True))
            ordered = {name: by_name[name] for name in self.columns if name in by_name} | by_name
            closest.append((ordered, [bool(ok) for ok in row[width:]]))
        return closest


async def _rows_and_names(database: AioDatabase, cursor: Any) -> tuple[list[Any], list[str]]:
    """The rows of a cursor, and the names of its columns."""
    return list(await cursor.fetchall()), [column[0] for column in cursor.description]


def _sql(database: AioDatabase, expression: Any) -> str:
    """How ``expression`` reads as SQL, its columns unqualified and its parameters in place, by their repr."""
    context = database.get_sql_context()
    sql: str
    with context.scope_values():
        sql, params = context.sql(expression).query()
    if sql.startswith("(") and _closing(sql) == len(sql) - 1:
        sql = sql[1:-1]
    pieces: list[str] = sql.split(database.param)
    if len(pieces) != len(params) + 1:  # a placeholder inside a literal: show the parameters apart
        return f"{sql} with {params!r}"
    return pieces[0] + "".join(_short(param) + piece for param, piece in zip(params, pieces[1:], strict=True))


def _closing(sql: str) -> int:
    """Where the parenthesis that opens ``sql`` closes (-1 if it does not)."""
    depth = 0
    for at, char in enumerate(sql):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return at
    return -1


def _short(value: Any) -> str:
    """The repr of ``value``, cut to :data:`WIDEST` characters."""
    shown = repr(value)
    return shown if len(shown) <= WIDEST else shown[: WIDEST - 3] + "..."
