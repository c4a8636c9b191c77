"""Read the live schema of tables on MySQL/MariaDB from ``information_schema``, one query per kind for all the
tables, and reduce MySQL's types, defaults and ``ON DELETE`` actions to what is compared.

The queries go through ``aio_execute_sql`` on the test's connection, as :mod:`~peewee_async_testing.catalog`'s do.
What MySQL does differently: integer types carry a display width (``int(11)``), dropped in a family but for
``tinyint(1)``, its boolean; ``RESTRICT`` is ``NO ACTION``; MariaDB spells defaults its own way
(``current_timestamp()``, ``0.50``); an index may index a prefix of a column (``name(10)``); and a foreign key
gets an index of its own when none fits, which is not reported as one the models lack.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from peewee_async.databases import AioDatabase

from .catalog import _QUOTED, Column, ForeignKey, Index, Table, _grouped, _rows, canonical_default

#: The tables asked for (``{pairs}``) are pairs (database, table): a model's schema is a database; none is the
#: connection's.
_MYSQL_COLUMNS = """SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME, c.COLUMN_TYPE, c.IS_NULLABLE = 'YES',
  c.COLUMN_DEFAULT, c.EXTRA, k.COLUMN_NAME IS NOT NULL, c.DATA_TYPE, VERSION() LIKE '%%MariaDB%%'
FROM information_schema.COLUMNS AS c LEFT JOIN information_schema.KEY_COLUMN_USAGE AS k
  ON k.TABLE_SCHEMA = c.TABLE_SCHEMA AND k.TABLE_NAME = c.TABLE_NAME AND k.COLUMN_NAME = c.COLUMN_NAME
  AND k.CONSTRAINT_NAME = 'PRIMARY'
WHERE (c.TABLE_SCHEMA, c.TABLE_NAME) IN ({pairs}) ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION"""
_MYSQL_FOREIGN_KEYS = """SELECT k.TABLE_SCHEMA, k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME,
  k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, r.DELETE_RULE
FROM information_schema.KEY_COLUMN_USAGE AS k JOIN information_schema.REFERENTIAL_CONSTRAINTS AS r
  ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.TABLE_NAME = k.TABLE_NAME
  AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME
WHERE (k.TABLE_SCHEMA, k.TABLE_NAME) IN ({pairs})
ORDER BY k.TABLE_SCHEMA, k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION"""
_MYSQL_INDEXES = """SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, NON_UNIQUE = 0, COLUMN_NAME, SUB_PART
FROM information_schema.STATISTICS WHERE (TABLE_SCHEMA, TABLE_NAME) IN ({pairs}) AND INDEX_NAME <> 'PRIMARY'
ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX"""
_MYSQL_NAME = re.compile(r"`((?:[^`]|``)*)`")


async def read_mysql(database: AioDatabase, tables: list[str]) -> dict[str, Table]:
    names = {}  # (database, table) -> the name asked for
    for name in tables:
        parts = [part.replace("``", "`") for part in _MYSQL_NAME.findall(name)]
        names[(parts[0] if len(parts) == 2 else database.database, parts[-1])] = name
    pairs = ", ".join(["(%s, %s)"] * len(names))
    params = [part for pair in names for part in pair]

    def rows(sql: str) -> Any:
        return _rows(database, sql.format(pairs=pairs), params)

    found: dict[str, Table] = {}
    for schema, table, column, type_, null, default, extra, primary_key, kind, mariadb in await rows(_MYSQL_COLUMNS):
        auto = "auto_increment" in extra.lower()
        shown = _mysql_shown(type_) + (" AUTO_INCREMENT" if auto else "")
        found.setdefault(names[(schema, table)], Table()).columns[column] = Column(
            shown,
            mysql_family(type_, auto=auto),
            bool(null),
            bool(primary_key),
            mysql_reported_default(default, extra=extra, kind=kind, mariadb=bool(mariadb), null=bool(null)),
        )
    for (schema, table, _), parts in _grouped(await rows(_MYSQL_FOREIGN_KEYS), 3):
        columns, targets = tuple(part[3] for part in parts), tuple(part[5] for part in parts)
        key = ForeignKey(columns, parts[0][4], targets, mysql_on_delete(parts[0][6]))
        found[names[(schema, table)]].foreign_keys.append(key)
    for (schema, table, _), parts in _grouped(await rows(_MYSQL_INDEXES), 3):
        owner = found[names[(schema, table)]]
        columns = tuple(None if part[4] is None else part[4] + (f"({part[5]})" if part[5] else "") for part in parts)
        unique = bool(parts[0][3])
        implicit = not unique and any(key.columns == columns for key in owner.foreign_keys)
        owner.indexes.append(Index(columns, unique, for_foreign_key=implicit))
    return found


_MYSQL_NUMBERS = {"tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "float", "double", "bit", "year"}


def mysql_reported_default(default: str | None, *, extra: str, kind: str, mariadb: bool, null: bool) -> str | None:
    """A column's ``COLUMN_DEFAULT`` as SQL text. MariaDB reports it so (``'x'``, ``current_timestamp()``, and
    ``NULL`` for none on a nullable column); MySQL 8 reports a literal unquoted (``x``), an expression with
    ``DEFAULT_GENERATED`` in ``EXTRA``, and none as NULL. ``kind`` is the column's ``DATA_TYPE``."""
    if default is None or (mariadb and null and default == "NULL"):
        return None
    if mariadb or "default_generated" in extra.lower() or kind.lower() in _MYSQL_NUMBERS:
        return default
    return "'" + default.replace("'", "''") + "'"


def mysql_on_delete(action: str) -> str:
    """An ``ON DELETE`` action as compared on MySQL: ``RESTRICT`` is ``NO ACTION`` (InnoDB checks both at once)."""
    action = action.upper()
    return "NO ACTION" if action == "RESTRICT" else action


#: What MySQL reports for each name a type is declared by (integer types lose their display width, but for
#: ``TINYINT(1)``, MySQL's boolean).
_MYSQL_ALIASES = {
    "integer": "int",
    "int4": "int",
    "int1": "tinyint",
    "int2": "smallint",
    "int3": "mediumint",
    "middleint": "mediumint",
    "int8": "bigint",
    "bool": "tinyint(1)",
    "boolean": "tinyint(1)",
    "numeric": "decimal",
    "dec": "decimal",
    "fixed": "decimal",
    "double precision": "double",
    "real": "double",
    "float4": "float",
    "float8": "double",
    "character varying": "varchar",
    "character": "char",
    "json": "longtext",
    "long": "mediumtext",
    "long varchar": "mediumtext",
}
_MYSQL_INTEGERS = {"tinyint", "smallint", "mediumint", "int", "bigint"}
#: The modifiers a type has when it is declared without any.
_MYSQL_IMPLIED = {"decimal": "10,0", "char": "1", "binary": "1", "bit": "1"}
_MYSQL_TYPE = re.compile(
    r"(?P<base>[a-z][a-z0-9 ]*?)\s*(?:\((?P<modifiers>.*)\))?(?P<rest>(?:\s+(?:un)?signed|\s+zerofill)*)"
)


def mysql_family(declared: str, *, auto: bool = False) -> str:
    """The type MySQL/MariaDB reports (``COLUMN_TYPE``) for one declared as ``declared``, with its modifiers but no
    integer display width: ``INTEGER`` and ``int(11)`` are ``int``, ``NUMERIC(8, 2)`` is ``decimal(8,2)``,
    ``BOOL`` is ``tinyint(1)``, ``ENUM('a', 'b')`` is ``enum('a','b')``; ``auto``: ``AUTO_INCREMENT``."""
    text = _outside_quotes(declared, lambda part: " ".join(part.lower().split()))
    auto = auto or "auto_increment" in text.split()
    text = " ".join(word for word in text.split(" ") if word != "auto_increment")
    if text == "serial":
        text, auto = "bigint unsigned", True
    match = _MYSQL_TYPE.fullmatch(text)
    if match is None:
        return f"{text} auto" if auto else text
    base, modifiers = match["base"], _outside_quotes(match["modifiers"] or "", lambda part: "".join(part.split()))
    rest = [word for word in match["rest"].split() if word != "signed"]
    if base == "float" and modifiers.isdigit():  # FLOAT(p): single precision up to 24 bits, double beyond
        base, modifiers = ("float" if int(modifiers) <= 24 else "double"), ""
    base = _MYSQL_ALIASES.get(base, base)
    if base == "tinyint" and modifiers == "1" and not rest:
        base, modifiers = "tinyint(1)", ""
    if base in _MYSQL_INTEGERS:
        modifiers = ""
    if base == "decimal" and modifiers.isdigit():
        modifiers += ",0"
    modifiers = modifiers or _MYSQL_IMPLIED.get(base, "")
    family = " ".join([base + (f"({modifiers})" if modifiers else ""), *rest])
    return f"{family} auto" if auto else family


def _mysql_shown(reported: str) -> str:
    """A type as MySQL reports it, as a message shows it: ``int(11)`` is ``INT(11)``, quoted values kept."""
    return _outside_quotes(reported, str.upper)


def _outside_quotes(text: str, change: Callable[[str], str]) -> str:
    """``text`` with ``change`` applied to each part outside its quoted strings."""
    parts = _QUOTED.split(text)
    return "".join(part if index % 2 else change(part) for index, part in enumerate(parts))


_MYSQL_NOW = re.compile(r"\b(?:current_timestamp|now|localtimestamp|localtime)\b(?:\(\))?")


def mysql_default(text: str | None) -> str | None:
    """A column default in one spelling on MySQL, after :func:`canonical_default`: MariaDB's ``current_timestamp()``
    is ``CURRENT_TIMESTAMP`` (as are ``NOW()`` and the rest), ``false`` is ``0``, ``0.50`` of a ``DECIMAL(8,2)`` is
    ``0.5``."""
    text = canonical_default(text)
    if text is None:
        return None
    text = _outside_quotes(text, lambda part: _MYSQL_NOW.sub("current_timestamp", part))
    text = {"false": "0", "true": "1"}.get(text, text)
    if re.fullmatch(r"[-+]?\d+\.\d*", text):
        text = text.rstrip("0").rstrip(".")
    return text
