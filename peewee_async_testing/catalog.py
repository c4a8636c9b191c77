"""Read the live schema of tables (columns, foreign keys, indexes) through the async API, in a few catalog queries.

The queries go through ``aio_execute_sql``, so inside a test transaction they run on the test's connection and
see its own uncommitted DDL (a synchronous query would wait on the lock its ``ALTER TABLE`` holds). PostgreSQL:
``pg_catalog``, one query per kind for all the tables; SQLite: its ``pragma_*`` table-valued functions, joined
to ``sqlite_master`` likewise; MySQL: ``information_schema``, in :mod:`~peewee_async_testing.mysql_catalog`.
Types are reduced to a family to compare (:func:`pg_family`, :func:`sqlite_family`), defaults to a canonical
text (:func:`canonical_default`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import peewee
from peewee_async.databases import AioDatabase, fetchall

from ._database import is_mysql, is_postgres


@dataclass
class Column:
    """A column: its type as declared (or as the database reports it), the family compared, and the rest."""

    type: str
    family: str | None  # None: not compared (a field with no declared type)
    null: bool
    primary_key: bool
    default: str | None  # None: none (on the models' side: none declared, so not compared)

    def shown(self, default: bool) -> str:
        """``VARCHAR(100) NOT NULL PRIMARY KEY``, and (``default``) its default."""
        text = f"{self.type or '(no type)'} {'NULL' if self.null else 'NOT NULL'}"
        text += " PRIMARY KEY" if self.primary_key else ""
        if default:
            text += " (no default)" if self.default is None else f" DEFAULT {self.default}"
        return text

    def matches(self, found: Column, canonical: Callable[[str | None], str | None] | None = None) -> bool:
        """Whether the database's column ``found`` is this column of the models' (defaults compared in the
        spelling ``canonical`` gives, by default :func:`canonical_default`)."""
        canonical = canonical or canonical_default
        return (
            (self.family is None or self.family == found.family)
            and self.null == found.null
            and self.primary_key == found.primary_key
            and (self.default is None or canonical(self.default) == canonical(found.default))
        )


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key: its columns, the table and columns it references, and its ``ON DELETE`` action."""

    columns: tuple[str, ...]
    table: str
    target_columns: tuple[str | None, ...]  # None: the target's primary key, unnamed (SQLite)
    on_delete: str

    def target(self) -> tuple[tuple[str, ...], str, tuple[str | None, ...]]:
        """What it ties to what: everything but its ``ON DELETE``."""
        return self.columns, self.table, self.target_columns

    def on_delete_clause(self) -> str:
        return f"ON DELETE {self.on_delete}"

    def __str__(self) -> str:
        target = ", ".join(column or "its primary key" for column in self.target_columns)
        return f"{', '.join(self.columns)} -> {self.table}({target}) {self.on_delete_clause()}"


@dataclass(frozen=True)
class Index:
    """An index: its columns in order, and whether it is unique."""

    columns: tuple[str | None, ...]  # None: an expression; MySQL's prefix of a column: "name(10)"
    unique: bool
    #: The database's side only: an index MySQL may have made by itself for a foreign key (not unique, on the
    #: foreign key's columns): when the models have none, it is not reported.
    for_foreign_key: bool = field(default=False, compare=False)

    def described(self) -> str:
        return "(" + ", ".join(column or "(expression)" for column in self.columns) + ")"

    def __str__(self) -> str:
        return f"{'unique index' if self.unique else 'index'} {self.described()}"


@dataclass
class Table:
    """A table's columns (by name, in order), foreign keys and indexes."""

    columns: dict[str, Column] = field(default_factory=dict)
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    indexes: list[Index] = field(default_factory=list)
    #: The models' side only: it has foreign keys or indexes that cannot be compared (raw SQL, expressions), so
    #: the database's that match none of the others are not reported.
    opaque_foreign_keys: bool = False
    opaque_indexes: bool = False


def label(model: type[peewee.Model]) -> str:
    """The model's table as a message names it: ``book``, ``shop.book``."""
    meta = model._meta
    return f"{meta.schema}.{meta.table_name}" if meta.schema else str(meta.table_name)


def qualified(database: AioDatabase, model: type[peewee.Model]) -> str:
    """The model's table as :func:`read` looks it up: quoted and schema-qualified on PostgreSQL and MySQL (a
    schema is a database there), the bare name on SQLite (its main database)."""
    if not is_postgres(database) and not is_mysql(database):
        return str(model._meta.table_name)
    parts = [model._meta.schema, model._meta.table_name] if model._meta.schema else [model._meta.table_name]
    left, right = database.quote
    return ".".join(left + part.replace(right, right * 2) + right for part in parts)


async def read(database: AioDatabase, tables: Sequence[str]) -> dict[str, Table]:
    """The tables among ``tables`` (each as :func:`qualified` names it) that exist, by that name."""
    if is_mysql(database):
        from .mysql_catalog import read_mysql  # it builds on this module's classes

        return await read_mysql(database, list(tables))
    reader = _read_postgres if is_postgres(database) else _read_sqlite
    return await reader(database, list(tables))


async def _rows(database: AioDatabase, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    return list(await database.aio_execute_sql(sql, params, fetch_results=fetchall))


# -- PostgreSQL ----------------------------------------------------------------------------------------------------

_PG_TABLES = """WITH t AS (
  SELECT name, c.oid FROM unnest(%s::text[]) AS name JOIN pg_class AS c ON c.oid = to_regclass(name)
  WHERE c.relkind IN ('r', 'p')
)"""
_PG_COLUMNS = f"""{_PG_TABLES}
SELECT t.name, a.attname::text, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
  pg_get_expr(d.adbin, d.adrelid), a.attidentity <> '', COALESCE(a.attnum = ANY(p.conkey), false)
FROM t JOIN pg_attribute AS a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_constraint AS p ON p.conrelid = t.oid AND p.contype = 'p'
ORDER BY t.name, a.attnum"""
#: The names of the columns numbered ``{numbers}`` of relation ``{relation}``, in order (NULL for an expression).
_PG_NAMES = """ARRAY(SELECT a.attname::text FROM unnest({numbers}) WITH ORDINALITY AS k(number, position)
  LEFT JOIN pg_attribute AS a ON a.attrelid = {relation} AND a.attnum = k.number {where} ORDER BY k.position)"""
_PG_FOREIGN_KEYS = f"""{_PG_TABLES}
SELECT t.name, {_PG_NAMES.format(numbers="f.conkey", relation="f.conrelid", where="")}, r.relname::text,
  {_PG_NAMES.format(numbers="f.confkey", relation="f.confrelid", where="")}, f.confdeltype::text
FROM t JOIN pg_constraint AS f ON f.conrelid = t.oid AND f.contype = 'f' JOIN pg_class AS r ON r.oid = f.confrelid
ORDER BY t.name, f.conname"""
_PG_INDEXES = f"""{_PG_TABLES}
SELECT t.name, i.indisunique,
  {_PG_NAMES.format(numbers="i.indkey::int2[]", relation="i.indrelid", where="WHERE k.position <= i.indnkeyatts")}
FROM t JOIN pg_index AS i ON i.indrelid = t.oid AND NOT i.indisprimary
ORDER BY t.name, i.indexrelid"""
_PG_ON_DELETE = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


async def _read_postgres(database: AioDatabase, tables: list[str]) -> dict[str, Table]:
    found: dict[str, Table] = {}
    for name, column, type_, null, default, identity, primary_key in await _rows(database, _PG_COLUMNS, (tables,)):
        auto = identity or (default or "").startswith("nextval(")
        shown = _PG_SERIALS.get(type_, type_.upper()) if auto else type_.upper()
        found.setdefault(name, Table()).columns[column] = Column(
            shown, pg_family(type_, auto=auto), null, primary_key, None if auto else default
        )
    for name, columns, target, target_columns, on_delete in await _rows(database, _PG_FOREIGN_KEYS, (tables,)):
        key = ForeignKey(tuple(columns), target, tuple(target_columns), _PG_ON_DELETE[on_delete])
        found[name].foreign_keys.append(key)
    for name, unique, columns in await _rows(database, _PG_INDEXES, (tables,)):
        found[name].indexes.append(Index(tuple(columns), unique))
    return found


_PG_SERIAL_NAMES = {"serial", "serial4", "bigserial", "serial8", "smallserial", "serial2"}
_PG_SERIALS = {"integer": "SERIAL", "bigint": "BIGSERIAL", "smallint": "SMALLSERIAL"}
#: What PostgreSQL reports for each name a type is declared by.
_PG_ALIASES = {
    "int": "integer",
    "int4": "integer",
    "serial": "integer",
    "serial4": "integer",
    "int8": "bigint",
    "bigserial": "bigint",
    "serial8": "bigint",
    "int2": "smallint",
    "smallserial": "smallint",
    "serial2": "smallint",
    "varchar": "character varying",
    "char": "character",
    "bpchar": "character",
    "bool": "boolean",
    "decimal": "numeric",
    "float": "double precision",
    "float8": "double precision",
    "float4": "real",
    "timestamp": "timestamp without time zone",
    "timestamptz": "timestamp with time zone",
    "time": "time without time zone",
    "timetz": "time with time zone",
    "varbit": "bit varying",
}
_PG_TYPE = re.compile(r"(?P<base>[^(\[]+?)\s*(?:\((?P<modifiers>[^)]*)\)(?P<rest>[^(\[]*?))?\s*(?P<array>(?:\[\d*\])*)")
_IDENTITY = re.compile(r"\s+generated\s+.*\bas\s+identity\b.*$")


def pg_family(declared: str, *, auto: bool = False) -> str:
    """The type PostgreSQL reports for one declared as ``declared``, with its modifiers (``VARCHAR(100)`` is
    ``character varying(100)``); ``auto``: filled by a sequence or as an identity (``SERIAL`` is an auto
    ``integer``)."""
    text = " ".join(declared.lower().split())
    auto = auto or bool(_IDENTITY.search(text)) or text.split("(")[0] in _PG_SERIAL_NAMES
    text = _IDENTITY.sub("", text)
    match = _PG_TYPE.fullmatch(text)
    if match is None:
        return f"{text} auto" if auto else text
    base = " ".join(f"{match['base']} {match['rest'] or ''}".split())
    base = _PG_ALIASES.get(base, base)
    modifiers = "".join((match["modifiers"] or "").split())
    family = base + (f"({modifiers})" if modifiers else "") + ("[]" if match["array"] else "")
    return f"{family} auto" if auto else family


# -- SQLite --------------------------------------------------------------------------------------------------------

#: The rows of ``pragma_{pragma}`` (``p``) of each table named among the parameters (``m.name``).
_SQLITE_PRAGMA = """FROM sqlite_master AS m JOIN pragma_{pragma}(m.name) AS p{join}
WHERE m.type = 'table' AND m.name IN ({names})"""
_SQLITE_COLUMNS = """SELECT m.name, p.name, p.type, NOT p."notnull", p.dflt_value, p.pk > 0
{tables} ORDER BY m.name, p.cid"""
_SQLITE_FOREIGN_KEYS = """SELECT m.name, p.id, p."from", p."table", p."to", p.on_delete
{tables} ORDER BY m.name, p.id, p.seq"""
_SQLITE_INDEXES = """SELECT m.name, p.name, p."unique", i.name
{tables} AND p.origin <> 'pk' ORDER BY m.name, p.name, i.seqno"""

_SQLITE_INDEX_COLUMNS = " JOIN pragma_index_info(p.name) AS i"


async def _read_sqlite(database: AioDatabase, tables: list[str]) -> dict[str, Table]:
    def rows(sql: str, pragma: str, join: str = "") -> Any:
        names = ", ".join("?" * len(tables))
        return _rows(database, sql.format(tables=_SQLITE_PRAGMA.format(pragma=pragma, join=join, names=names)), tables)

    found: dict[str, Table] = {}
    for name, column, type_, null, default, primary_key in await rows(_SQLITE_COLUMNS, "table_info"):
        found.setdefault(name, Table()).columns[column] = Column(
            type_, sqlite_family(type_), bool(null), bool(primary_key), default
        )
    for table in found.values():  # the one INTEGER PRIMARY KEY is the rowid: never NULL, declared so or not
        keys = [column for column in table.columns.values() if column.primary_key]
        if len(keys) == 1 and keys[0].family == "INTEGER":
            keys[0].null = False
    for (name, _), parts in _grouped(await rows(_SQLITE_FOREIGN_KEYS, "foreign_key_list")):
        columns, target, targets = tuple(part[2] for part in parts), parts[0][3], tuple(part[4] for part in parts)
        if None in targets and target in found:  # `REFERENCES genre`: its primary key
            targets = tuple(key for key, column in found[target].columns.items() if column.primary_key)
        found[name].foreign_keys.append(ForeignKey(columns, target, targets, parts[0][5].upper()))
    for (name, _), parts in _grouped(await rows(_SQLITE_INDEXES, "index_list", _SQLITE_INDEX_COLUMNS)):
        found[name].indexes.append(Index(tuple(part[3] for part in parts), bool(parts[0][2])))
    return found


def _grouped(rows: list[tuple[Any, ...]], width: int = 2) -> list[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
    """``rows`` grouped by their first ``width`` values (a table and one of its foreign keys or indexes), in
    order."""
    groups: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    for row in rows:
        groups.setdefault(row[:width], []).append(row)
    return list(groups.items())


def sqlite_family(declared: str) -> str:
    """The type as SQLite keeps it, the text declared, in one spelling: ``DECIMAL(10, 5)`` is ``DECIMAL(10,5)``."""
    text = " ".join(declared.upper().split())
    return re.sub(r"\s*([(),])\s*", r"\1", text)


# -- defaults ------------------------------------------------------------------------------------------------------

_CAST = re.compile(
    r"::(?:\"[^\"]+\"|character varying|double precision|bit varying|time(?:stamp)?(?:\(\d+\))? with(?:out)? time zone"
    r"|[\w.]+)(?:\(\d+(?:,\s*\d+)?\))?(?:\[\])*"
)
_QUOTED = re.compile(r"('(?:[^']|'')*')")


def canonical_default(text: str | None) -> str | None:
    """A column default as SQL text, in one spelling: without PostgreSQL's casts (``'x'::text`` is ``'x'``) and
    quoted numbers (``'-1'::integer`` is ``-1``), outer parentheses and case (outside quoted strings)."""
    if text is None:
        return None
    parts = _QUOTED.split(text.strip())
    text = "".join(
        part if index % 2 else " ".join(_CAST.sub("", part).lower().split()) for index, part in enumerate(parts)
    )
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1].strip()
    if re.fullmatch(r"'[-+]?\d+(?:\.\d+)?'", text):
        text = text[1:-1]
    return text


def _balanced(text: str) -> bool:
    depth = 0
    for part in _QUOTED.split(text)[::2]:
        for character in part:
            depth += {"(": 1, ")": -1}.get(character, 0)
            if depth < 0:
                return False
    return depth == 0
