"""On MySQL/MariaDB, the tables a test's writes reached beyond those its statements name, and the clear of them.

A write to a table may set off more: its triggers write other tables, its foreign keys cascade (``ON DELETE`` /
``ON UPDATE CASCADE``, ``SET NULL``, ``SET DEFAULT``) into the tables that reference it, and a stored function
that a statement calls may write anywhere. :func:`mysql_written` asks the server about the tables written (one
round trip, another for each further step, only where triggers or cascades lead on) and then empties them all,
with :func:`~peewee_async_testing.cleanup.mysql_empty`.
"""

from __future__ import annotations

import re

import peewee
from peewee_async.databases import AioDatabase

from .cleanup import Plan, _literal, mysql_empty, mysql_present, mysql_schema, mysql_tables
from .targets import called_names, written_tables

#: A statement of a trigger's body that writes (its first word), and what the body may call.
_BODY_WRITE = re.compile(r"\b(?:INSERT|REPLACE|UPDATE|DELETE)\b", re.I)
_BODY_CALL = re.compile(r"\bCALL\b", re.I)
_CASCADING = "('CASCADE', 'SET NULL', 'SET DEFAULT')"


def mysql_written(
    database: AioDatabase,
    models: list[type[peewee.Model]],
    tables: set[str] | None,
    called: set[str],
    sequences: bool,
    *,
    sync: bool,
) -> Plan:
    """Empty the tables among those of ``models`` that were written: ``tables`` (the statements' tables; None
    for every table) and what writes to them set off, children first, foreign key checks off. ``sync``: on
    peewee's synchronous connection."""
    if not models:
        return
    schemas = ", ".join(sorted({_literal(mysql_schema(database, model)) for model in models}))
    written = None if tables is None else set(tables)
    asked: set[str] = set()
    functions: set[str] | None = None  # the stored functions of the schemas, once asked
    present: list[type[peewee.Model]] | None = None
    while True:
        queries = [] if present is not None else [mysql_tables(database, models)]
        new = sorted(written - asked) if written is not None else []
        if new:
            names = ", ".join(_literal(name) for name in new)
            queries.append(
                "SELECT 'trigger', EVENT_OBJECT_TABLE, ACTION_STATEMENT FROM information_schema.TRIGGERS"
                f" WHERE TRIGGER_SCHEMA IN ({schemas}) AND EVENT_OBJECT_TABLE IN ({names})"
            )
            queries.append(
                "SELECT 'cascade', TABLE_NAME, '' FROM information_schema.REFERENTIAL_CONSTRAINTS"
                f" WHERE CONSTRAINT_SCHEMA IN ({schemas}) AND REFERENCED_TABLE_NAME IN ({names})"
                f" AND (UPDATE_RULE IN {_CASCADING} OR DELETE_RULE IN {_CASCADING})"
            )
        if written is not None and called and functions is None:
            functions = set()
            queries.append(
                "SELECT 'function', ROUTINE_NAME, '' FROM information_schema.ROUTINES"
                f" WHERE ROUTINE_SCHEMA IN ({schemas}) AND ROUTINE_TYPE = 'FUNCTION'"
            )
        if not queries:
            break
        rows = yield " UNION ALL ".join(queries), (), True
        rows = list(rows or ())
        if present is None:
            present = mysql_present(database, models, rows)
        asked.update(new)
        for kind, name, body in rows:
            if written is None:
                break
            if kind == "function" and functions is not None:
                functions.add(str(name).lower())
            elif kind == "cascade":
                written.add(str(name))
            elif kind == "trigger":
                reached = _trigger_writes(str(body), called)
                written = None if reached is None else written | reached
        if written is not None and functions and called & functions:
            written = None  # a stored function was called: it may have written anywhere
    chosen = present or []
    if written is not None:
        chosen = [model for model in chosen if model._meta.table_name in written]
    yield from mysql_empty(database, chosen, "delete", sequences, sync=sync)


def _trigger_writes(body: str, called: set[str]) -> set[str] | None:
    """The tables a trigger's ``body`` writes; None if it cannot tell (a ``CALL``, a write it cannot read).
    The names it calls are added to ``called``: a stored function among them may write anywhere."""
    if _BODY_CALL.search(body):
        return None
    reached: set[str] = set()
    for write in _BODY_WRITE.finditer(body):
        tables = written_tables(body[write.start() :].split(";", 1)[0])
        if tables is None:
            return None
        reached.update(tables)
    called.update(called_names(body, sorted(reached)))
    return reached
