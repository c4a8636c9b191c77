"""Which tables one SQL statement writes to: read from its first words, for the write tracker.

:func:`written_tables` knows the writes of PostgreSQL, SQLite and MySQL/MariaDB: ``INSERT`` (``INTO``
optional, ``OR ...``, ``IGNORE``, ``ON CONFLICT``, ``ON DUPLICATE KEY UPDATE``), ``REPLACE``, ``UPDATE`` and
``DELETE`` (``ONLY``, MySQL's ``LOW_PRIORITY``, ``QUICK``, ``IGNORE``, and its multi-table forms) and MySQL's
``LOAD DATA ... INTO TABLE``, with names plain, ``"quoted"`` or ```backticked```, ``schema.table`` too.
Where it cannot be sure, it says so (None), and the tracker counts every table as written: never fewer.

Example::

    >>> written_tables("UPDATE `shop`.`book` AS b JOIN author a ON a.id = b.author_id SET b.title = 'x'")
    ['book', 'author']
    >>> written_tables("SELECT 1") is None
    True
"""

from __future__ import annotations

import re

_IDENTIFIER = r'(?:`(?:[^`]|``)+`|"(?:[^"]|"")+"|[A-Za-z_][\w$]*)'
_NAME = rf"{_IDENTIFIER}(?:\s*\.\s*{_IDENTIFIER})?"
#: The modifiers that may stand between a write's keyword and its table (MySQL's, SQLite's ``OR ...``).
_MODIFIERS = r"(?:\s+(?:LOW_PRIORITY|DELAYED|HIGH_PRIORITY|QUICK|IGNORE|OR\s+\w+))*"
_INSERT = re.compile(rf"(?:INSERT|REPLACE){_MODIFIERS}(?:\s+INTO)?\s+({_NAME})", re.I)
_LOAD = re.compile(rf"LOAD\s+(?:DATA|XML)\b.*?\bINTO\s+TABLE\s+({_NAME})", re.I | re.S)
_UPDATE = re.compile(rf"UPDATE{_MODIFIERS}(?:\s+ONLY)?\s+", re.I)
_DELETE = re.compile(rf"DELETE{_MODIFIERS}\s+", re.I)
#: The tokens of a list of table references: a name, a string, a word's end, one character of anything else.
_TOKEN = re.compile(rf"\s*(?:(?P<name>{_NAME})|(?P<string>'(?:[^'\\]|\\.|'')*')|(?P<other>\S))", re.S)
_JOINS = frozenset({"join", "straight_join"})
_CALL = re.compile(r"([A-Za-z_][\w$]*)`?\s*\(")
#: Words followed by ``(`` that call no stored function: keywords, and the built-in functions peewee writes.
_NOT_CALLS = frozenset(
    [
        "all",
        "and",
        "any",
        "as",
        "avg",
        "between",
        "by",
        "case",
        "cast",
        "char",
        "coalesce",
        "concat",
        "count",
        "date",
        "exists",
        "from",
        "group_concat",
        "having",
        "if",
        "ifnull",
        "in",
        "insert",
        "interval",
        "into",
        "join",
        "lower",
        "max",
        "min",
        "not",
        "now",
        "nullif",
        "on",
        "or",
        "over",
        "replace",
        "round",
        "select",
        "set",
        "sum",
        "substring",
        "table",
        "trim",
        "upper",
        "using",
        "values",
        "when",
        "where",
        "with",
    ]
)
_JOIN_WORDS = frozenset({"inner", "cross", "left", "right", "outer", "natural", "full"})


def written_tables(statement: str) -> list[str] | None:
    """The tables (bare names, unquoted) that ``statement`` (one statement, leading comments off) writes to;
    None when it is not one of the writes above or its tables cannot be told (a derived table, ``WITH``)."""
    match = _INSERT.match(statement) or _LOAD.match(statement)
    if match:
        return [_bare(match.group(1))]
    update = _UPDATE.match(statement)
    if update:
        return _references(statement, update.end(), ends=("set",))
    delete = _DELETE.match(statement)
    if delete is None:
        return None
    start = delete.end()
    if statement[start : start + 4].lower() == "from":  # DELETE FROM t ... / DELETE FROM t1, t2 USING ...
        only = re.compile(r"FROM\s+ONLY\s+", re.I).match(statement, start)
        return _references(statement, only.end() if only else start + 4, ends=("where", "using", "order", "limit"))
    # DELETE t1, t2 FROM <references>: the tables before FROM (perhaps aliases) and every table named after it
    listed = _references(statement, start, ends=("from",))
    after = re.compile(r".*?\bFROM\b", re.I | re.S).match(statement, start)
    named = _references(statement, after.end(), ends=("where", "order", "limit")) if after else None
    return None if listed is None or named is None else [*listed, *named]


def called_names(statement: str, tables: list[str] | None = None) -> set[str]:
    """The names (lower case) that ``statement`` calls, ``name(...)``, that may be stored functions: not the
    keywords and built-ins peewee writes, nor ``tables`` (the table before an ``INSERT``'s column list)."""
    skip = {table.lower() for table in tables or ()}
    return {name for name in map(str.lower, _CALL.findall(statement)) if name not in _NOT_CALLS and name not in skip}


def _references(statement: str, position: int, *, ends: tuple[str, ...]) -> list[str] | None:
    """The tables named in the list of table references from ``position`` up to one of the words ``ends``
    (or the end): the first, and each after a comma or a ``JOIN``. None for a parenthesised reference (a
    derived table, a nested join), whose tables cannot be told apart from a condition's."""
    tables: list[str] = []
    expect, depth = True, 0  # expect: the next name is a table
    while position < len(statement):
        token = _TOKEN.match(statement, position)
        if token is None:  # only white space left
            break
        position = token.end()
        name, other = token.group("name"), token.group("other")
        word = name.lower() if name and "." not in name and name[0] not in '`"' else ""
        if depth == 0 and word in ends:
            break
        if other == "(":
            if expect:
                return None
            depth += 1
        elif other == ")":
            depth = max(depth - 1, 0)
        elif depth:
            continue
        elif other == "," or word in _JOINS:
            expect = True
        elif word in _JOIN_WORDS or word == "only":
            continue
        elif name and expect:
            tables.append(_bare(name))
            expect = False
    return tables or None


def _bare(name: str) -> str:
    """The table's own name in ``name`` (``schema.table`` or ``table``), its quotes taken off."""
    last: str = re.findall(_IDENTIFIER, name)[-1]
    if last[0] in '`"':
        return last[1:-1].replace(last[0] * 2, last[0])
    return last
