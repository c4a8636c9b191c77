"""Which statements of a SQL string control transactions: a small scanner, nearly free for ordinary statements.

:func:`control_statements` splits a string into its statements as the server does (quotes, double quotes,
dollar quotes, ``E''`` strings, ``--`` and ``/* */`` comments, parentheses, and the ``BEGIN ATOMIC ... END``
body of a PostgreSQL function; for MySQL, backslash escapes, backticks, ``#`` comments and routine bodies) and names
what each one does to a transaction. A string whose first word
starts no such statement and that holds no ``;`` is decided by one regular expression match.

Example::

    >>> control_statements("INSERT INTO t VALUES (1); COMMIT", postgres=True)
    [(0, 24, None), (25, 32, 'commit')]
    >>> control_statements("SELECT 1", postgres=True) is None
    True
"""

from __future__ import annotations

import re

#: What a statement does to a transaction: opens it, commits, rolls back, works on a named savepoint
#: (``SAVEPOINT``, ``RELEASE``, ``ROLLBACK TO``), or prepares / finishes a two-phase commit.
BEGIN, COMMIT, ROLLBACK, SAVEPOINT, PREPARED = "begin", "commit", "rollback", "savepoint", "prepared"

#: MySQL's ``SET autocommit``, ``LOCK TABLES`` and ``UNLOCK TABLES``: each commits the open transaction (or, turning
#: autocommit off, changes what commits), and no savepoint can stand for it.
AUTOCOMMIT = "autocommit"

#: The first words that can start one of those statements (PostgreSQL's, SQLite's and MySQL's together).
_LEADING = frozenset(
    {
        "abort",
        "begin",
        "commit",
        "end",
        "prepare",
        "release",
        "rollback",
        "savepoint",
        "start",
        "set",
        "xa",
        "lock",
        "unlock",
    }
)
_FIRST_WORD = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_$]*)")
_TOKEN_PATTERN = r"""(?P<space>\s+)
    |(?P<line>--[^\n\r]*)
    |(?P<block>/\*)
    |(?P<escaped>[eE]'(?:[^'\\]|\\.|'')*'?)
    |(?P<string>'(?:[^'{backslash}]|{escape}'')*'?)
    |(?P<quoted>"(?:[^"]|"")*"?)
    |(?P<dollar>\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$)
    |(?P<word>[A-Za-z_][A-Za-z0-9_$]*)
    |(?P<semicolon>;)
    |(?P<open>\()
    |(?P<close>\))
    |(?P<other>.)"""
#: The tokens of a statement, by whether a backslash escapes in a plain string ('...'): not by default, yes with
#: PostgreSQL's standard_conforming_strings off.
_TOKENS = {
    backslashes: re.compile(
        _TOKEN_PATTERN.format(backslash="\\\\" if backslashes else "", escape="\\\\.|" if backslashes else ""),
        re.VERBOSE | re.DOTALL,
    )
    for backslashes in (False, True)
}
#: MySQL's tokens: strings in single or double quotes (a backslash escapes, unless the server's sql_mode has
#: NO_BACKSLASH_ESCAPES), identifiers in backticks, ``#`` and ``-- `` comments, no dollar quotes.
_MYSQL_PATTERN = r"""(?P<space>\s+)
    |(?P<line>(?:\#|--(?=\s|$))[^\n\r]*)
    |(?P<block>/\*)
    |(?P<string>'(?:[^'{backslash}]|{escape}'')*'?)
    |(?P<quoted>"(?:[^"{backslash}]|{escape}"")*"?)
    |(?P<backtick>`(?:[^`]|``)*`?)
    |(?P<word>[A-Za-z_][A-Za-z0-9_$]*)
    |(?P<semicolon>;)
    |(?P<open>\()
    |(?P<close>\))
    |(?P<other>.)"""
_MYSQL_TOKENS = {
    backslashes: re.compile(
        _MYSQL_PATTERN.format(backslash="\\\\" if backslashes else "", escape="\\\\.|" if backslashes else ""),
        re.VERBOSE | re.DOTALL,
    )
    for backslashes in (False, True)
}
_WORDS = 4  # the leading words that tell a statement's kind


def control_statements(
    sql: str, *, postgres: bool, backslashes: bool = False, mysql: bool = False
) -> list[tuple[int, int, str | None]] | None:
    """None when ``sql`` controls no transaction (the usual case); else every statement of it, in order, as
    ``(start, end, kind)``: ``kind`` is one of :data:`BEGIN`, :data:`COMMIT`, :data:`ROLLBACK`,
    :data:`SAVEPOINT`, :data:`PREPARED`, or None for a statement that controls nothing.

    SQLite's driver runs one statement per ``execute()`` (and refuses a string with more), so for SQLite
    only the first statement counts. ``backslashes``: a backslash escapes in plain strings too (PostgreSQL's
    ``standard_conforming_strings`` off; MySQL's default). ``mysql``: MySQL's syntax, and its kinds
    (:data:`AUTOCOMMIT`, ``XA`` as :data:`PREPARED`); aiomysql sends a string of several statements at once.
    """
    if ";" not in sql:
        first = _FIRST_WORD.match(sql)
        if first is not None and first.group(1).lower() not in _LEADING:
            return None
    if mysql:
        statements = [(start, end, _mysql_kind(words)) for start, end, words in _split_mysql(sql, backslashes)]
        return statements if any(kind for _, _, kind in statements) else None
    statements = [
        (start, end, _kind(words, postgres)) for start, end, words in _split(sql, postgres, _TOKENS[backslashes])
    ]
    if not postgres:
        statements = statements[:1]
    return statements if any(kind for _, _, kind in statements) else None


def _split(sql: str, postgres: bool, tokens: re.Pattern[str]) -> list[tuple[int, int, list[str]]]:
    """The statements of ``sql``, each as ``(start, end, its first words in lower case)``."""
    statements: list[tuple[int, int, list[str]]] = []
    start, position, words = 0, 0, []  # type: ignore[var-annotated]
    parentheses = depth = 0  # depth: inside a BEGIN ATOMIC body (PostgreSQL)
    previous = ""
    routine = False  # a CREATE FUNCTION / PROCEDURE statement, whose body may hold semicolons
    while position < len(sql):
        token = tokens.match(sql, position)
        assert token is not None  # (?P<other>.) matches anything
        kind, position = token.lastgroup, token.end()
        if kind == "block":
            position = _comment_end(sql, position, nested=postgres)
        elif kind == "dollar":
            close = sql.find(token.group(), position)
            position = len(sql) if close < 0 else close + len(token.group())
        elif kind == "word":
            word = token.group().lower()
            if len(words) < _WORDS:
                words.append(word)
                routine = routine or (words[0] == "create" and word in ("function", "procedure"))
            if routine and postgres and parentheses == 0:
                if (previous == "begin" and word == "atomic") or (depth and word == "case"):
                    depth += 1
                elif depth and word == "end":
                    depth -= 1
            previous = word
        elif kind == "open":
            parentheses += 1
        elif kind == "close":
            parentheses = max(parentheses - 1, 0)
        elif kind == "semicolon" and parentheses == 0 and depth == 0:
            statements.append((start, position - 1, words))
            start, words, previous, routine = position, [], "", False
    statements.append((start, len(sql), words))
    return [(first, last, said) for first, last, said in statements if said]


def mysql_statements(script: str) -> list[str]:
    """The statements of a MySQL ``script``, one string each, as the server would split them (for drivers that
    take one statement per call, as PyMySQL's connection does by default). A routine runs to the end of the
    script: MySQL's ``DELIMITER`` belongs to its client, not the server."""
    return [script[start:end].strip() for start, end, _ in _split_mysql(script, backslashes=True)]


def _split_mysql(sql: str, backslashes: bool) -> list[tuple[int, int, list[str]]]:
    """The statements of ``sql`` (MySQL), each as ``(start, end, its first words in lower case)``. A routine,
    trigger or event (``CREATE ... PROCEDURE``) runs to the end of the string: its body holds semicolons."""
    statements: list[tuple[int, int, list[str]]] = []
    start, position, words = 0, 0, []  # type: ignore[var-annotated]
    parentheses = 0
    tokens = _MYSQL_TOKENS[backslashes]
    while position < len(sql):
        token = tokens.match(sql, position)
        assert token is not None  # (?P<other>.) matches anything
        kind, position = token.lastgroup, token.end()
        if kind == "block":
            executable = _EXECUTABLE.match(sql, position)  # /*! ... */, /*M! ... */: the server runs what is inside
            position = executable.end() if executable else _comment_end(sql, position, nested=False)
        elif kind == "word" and (len(words) < _words(words) or words[0] == "set"):
            words.append(token.group().lower())
            if _routine(words):
                break
        elif kind == "open":
            parentheses += 1
        elif kind == "close":
            parentheses = max(parentheses - 1, 0)
        elif kind == "semicolon" and parentheses == 0:
            statements.append((start, position - 1, words))
            start, words = position, []
    statements.append((start, len(sql), words))
    return [(first, last, said) for first, last, said in statements if said]


#: The opening of an executable comment (``/*!``, ``/*M!`` with an optional version), after the ``/*``: its text runs.
_EXECUTABLE = re.compile(r"M?!\d*")
_ROUTINES = frozenset({"procedure", "function", "trigger", "event"})


def _words(words: list[str]) -> int:
    """How many leading words tell a MySQL statement's kind: more for a ``CREATE``, whose routine keyword may come
    after ``OR REPLACE`` and a ``DEFINER``."""
    return 8 if words and words[0] == "create" else _WORDS


def _routine(words: list[str]) -> bool:
    """Whether ``words`` open a routine, trigger or event (``CREATE [OR REPLACE] [DEFINER = ...] PROCEDURE``), not a
    table or view of that name (``CREATE TABLE event``)."""
    if words[0] != "create" or len(words) < 2 or words[-1] not in _ROUTINES:
        return False
    return words[-2] in ("create", "replace", "aggregate") or "definer" in words


def _mysql_kind(words: list[str]) -> str | None:
    """What a MySQL statement starting with ``words`` does to a transaction (None: nothing)."""
    if not words or words[0] not in _LEADING:
        return None
    first, rest = words[0], words[1:]
    if first == "set":
        return AUTOCOMMIT if "autocommit" in rest else None  # SET [SESSION] autocommit, SET a = 1, autocommit = 0
    if first == "xa":
        return PREPARED
    if first in ("lock", "unlock"):
        return AUTOCOMMIT if rest[:1] in (["table"], ["tables"]) else None
    if first == "begin":
        return None if rest[:2] == ["not", "atomic"] else BEGIN  # BEGIN NOT ATOMIC: a compound statement
    if first == "start":
        return BEGIN if rest[:1] == ["transaction"] else None
    if first == "rollback" and "to" in rest[:2]:
        return SAVEPOINT
    if first in ("commit", "rollback"):
        return COMMIT if first == "commit" else ROLLBACK
    if first in ("savepoint", "release"):
        return SAVEPOINT
    return None


def _comment_end(sql: str, position: int, *, nested: bool) -> int:
    """Where the block comment opened just before ``position`` ends (PostgreSQL's nest, SQLite's do not)."""
    level = 1
    while level:
        close = sql.find("*/", position)
        if close < 0:
            return len(sql)
        opening = sql.find("/*", position, close) if nested else -1
        if opening >= 0:
            level, position = level + 1, opening + 2
        else:
            level, position = level - 1, close + 2
    return position


def _kind(words: list[str], postgres: bool) -> str | None:
    """What a statement starting with ``words`` does to a transaction (None: nothing)."""
    if not words or words[0] not in _LEADING:
        return None
    first, rest = words[0], words[1:]
    if first == "begin" or (postgres and first == "start" and rest[:1] == ["transaction"]):
        return BEGIN
    if first in ("commit", "end", "rollback", "abort"):
        if postgres and first in ("commit", "rollback") and rest[:1] == ["prepared"]:
            return PREPARED
        if first == "rollback" and "to" in rest[:2]:
            return SAVEPOINT
        if first == "abort" and not postgres:
            return None
        return COMMIT if first in ("commit", "end") else ROLLBACK
    if first in ("savepoint", "release"):
        return SAVEPOINT
    if postgres and first == "prepare" and rest[:1] == ["transaction"]:
        return PREPARED
    return None
