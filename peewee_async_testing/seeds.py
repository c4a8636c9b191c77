"""The seed data of a test database: kept when it is written, and put back after every clear of its tables.

When the seed hook has run, :func:`keep` copies every table that has rows: on PostgreSQL into tables of the
schema ``peewee_async_testing_seed`` of the test database itself (so that pytest-xdist workers' copies of the
template have them too, and ``--peewee-reuse-db`` keeps them), and writes the statement that puts them back as
that schema's comment; on SQLite and MySQL it reads the rows (a file per session; on MySQL a copy of the
database, or one kept by ``--peewee-reuse-db``, is read again by :func:`load`). After a clear,
:func:`restore_plan` inserts the seed rows that are missing (found by a key; in a table without one, all of
them into the table if the clear emptied it), parents first (on PostgreSQL with the tables' triggers off: the
rows go back as they were kept, not through the triggers again), and moves each sequence of a seeded table
that is behind its value at seeding (a clear may restart it) up to that value (MySQL moves an
``AUTO_INCREMENT`` past the rows inserted by itself).
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Sequence
from typing import Any

from peewee_async.databases import AioDatabase

from ._database import is_mysql, is_postgres, sync_queries
from .ownership import quote

#: The schema of the test database that holds the seed rows' copies (PostgreSQL).
SCHEMA = "peewee_async_testing_seed"
#: SQLite's limit of parameters per statement, before 3.32: the rows are inserted in chunks under it.
_SQLITE_PARAMETERS = 999
#: The most rows one MySQL statement puts back (its size is bounded by the server's max_allowed_packet).
_MYSQL_ROWS = 1000

#: (sql, parameters): one statement that puts seed rows back.
Statement = tuple[str, Sequence[Any]]
#: The statements that put the seed rows back, by database object: (the test database's name, statements).
_kept: dict[int, tuple[str, list[Statement]]] = {}


def keep(database: AioDatabase) -> None:
    """Keep the rows ``database`` (a freshly seeded test database) holds, to put them back after each clear."""
    with sync_queries(database):
        if is_postgres(database):
            statements = _pg_keep(database)
        else:
            statements = _mysql_keep(database) if is_mysql(database) else _sqlite_keep(database)
    _kept[id(database)] = (database.database, statements)


def load(database: AioDatabase) -> None:
    """Read what :func:`keep` wrote into ``database`` (a copy of a seeded PostgreSQL test database, or one kept
    by ``--peewee-reuse-db``); none kept, nothing to put back. On MySQL, where nothing is written, the rows the
    copy holds are read, as :func:`keep` reads them: before any test, they are the seed rows."""
    if is_mysql(database):
        keep(database)
        return
    with sync_queries(database):
        rows = database.execute_sql(
            "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s", (SCHEMA,)
        ).fetchall()
    if rows and rows[0][0]:
        _kept[id(database)] = (database.database, [(rows[0][0], ())])


def forget(database: AioDatabase) -> None:
    """Put nothing back on ``database`` any longer (its test database is gone)."""
    _kept.pop(id(database), None)


def restore_plan(database: AioDatabase) -> list[Statement]:
    """The statements that put ``database``'s seed rows back (none when it has none, or no longer points at its
    test database)."""
    kept = _kept.get(id(database))
    return kept[1] if kept is not None and kept[0] == database.database else []


def _parents_first(tables: Iterable[str], references: Iterable[tuple[str, str]]) -> list[str]:
    """``tables`` with each table after the tables it references (as given, where references go round)."""
    tables = list(tables)
    graph: dict[str, set[str]] = {table: set() for table in tables}
    for child, parent in references:
        if child in graph and parent in graph and child != parent:
            graph[child].add(parent)
    try:
        return list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError:
        return tables


_PG_TABLES = f"""
SELECT c.oid::regclass::text,
       CASE WHEN NOT EXISTS (SELECT 1 FROM pg_index AS i WHERE i.indrelid = c.oid AND i.indisunique) THEN NULL
            WHEN NOT EXISTS (SELECT 1 FROM pg_index AS i WHERE i.indrelid = c.oid AND NOT i.indimmediate) THEN ''
            ELSE (SELECT '(' || string_agg(quote_ident(a.attname), ', ' ORDER BY k.n) || ') '
                  FROM unnest((SELECT i.indkey::int2[] FROM pg_index AS i WHERE i.indrelid = c.oid AND i.indisunique
                               AND i.indimmediate AND i.indpred IS NULL AND i.indexprs IS NULL
                               ORDER BY i.indisprimary DESC, i.indexrelid LIMIT 1)) WITH ORDINALITY AS k(attnum, n)
                  JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum = k.attnum) END,
       ARRAY(SELECT quote_ident(a.attname) FROM pg_attribute AS a WHERE a.attrelid = c.oid AND a.attnum > 0
             AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum),
       ARRAY(SELECT d.objid::regclass::text FROM pg_depend AS d JOIN pg_sequence AS s ON s.seqrelid = d.objid
             WHERE d.refobjid = c.oid AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')),
       ARRAY(SELECT ARRAY[quote_ident(t.tgname), CASE t.tgenabled WHEN 'A' THEN 'ENABLE ALWAYS' ELSE 'ENABLE' END]
             FROM pg_trigger AS t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal AND t.tgenabled IN ('O', 'A'))
FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('information_schema', '{SCHEMA}') AND n.nspname !~ '^pg_'
"""
_PG_REFERENCES = "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint WHERE contype = 'f'"


def _pg_keep(database: AioDatabase) -> list[Statement]:
    """Copy the tables with rows into :data:`SCHEMA`; the one statement that puts them back (or none)."""
    seeded = {}
    for table, conflict, columns, sequences, triggers in database.execute_sql(_PG_TABLES).fetchall():
        if database.execute_sql(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()[0]:
            seeded[table] = (conflict, columns, sequences, triggers)
    if not seeded:
        return []
    database.execute_sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    database.execute_sql(f"CREATE SCHEMA {SCHEMA}")
    body = []
    for table in _parents_first(seeded, database.execute_sql(_PG_REFERENCES).fetchall()):
        conflict, columns, sequences, triggers = seeded[table]
        copy, listed = f"{SCHEMA}.{quote(table)}", ", ".join(columns)  # (table: "ref.note", beside "note")
        database.execute_sql(f"CREATE TABLE {copy} AS SELECT {listed} FROM {table}")
        # By any key, or (ON CONFLICT refuses a deferrable one as a key) by one that is checked at once.
        missing = (
            f" WHERE NOT EXISTS (SELECT 1 FROM {table})" if conflict is None else f" ON CONFLICT {conflict}DO NOTHING"
        )
        # The rows as they were kept, not passed through the table's triggers again ('x' || text twice).
        body += [f"ALTER TABLE {table} DISABLE TRIGGER {trigger};" for trigger, _ in triggers]
        body.append(f"INSERT INTO {table} ({listed}) OVERRIDING SYSTEM VALUE SELECT {listed} FROM {copy}{missing};")
        body += [f"ALTER TABLE {table} {enable} TRIGGER {trigger};" for trigger, enable in triggers]
        for sequence in sequences:
            (value,) = database.execute_sql("SELECT pg_sequence_last_value(%s::regclass)", (sequence,)).fetchone()
            if value is not None:
                literal = "'" + sequence.replace("'", "''") + "'::regclass"
                body.append(
                    f"PERFORM setval({literal}, {int(value)}) "
                    f"WHERE COALESCE(pg_sequence_last_value({literal}), {int(value)} - 1) < {int(value)};"
                )
    statement = "DO $pwat_seed$ BEGIN\n" + "\n".join(body) + "\nEND $pwat_seed$"
    escaped = statement.replace("\\", "\\\\").replace("'", "''")
    database.execute_sql(f"COMMENT ON SCHEMA {SCHEMA} IS E'{escaped}'")  # (psycopg 3 binds no parameter there)
    return [(statement, ())]


def _sqlite_keep(database: AioDatabase) -> list[Statement]:
    """Read the tables with rows; the statements that put them back, parents first (or none)."""
    names = [
        name
        for (name,) in database.execute_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'"
        ).fetchall()
    ]
    references = [
        (name, parent)
        for name in names
        for (parent,) in database.execute_sql('SELECT "table" FROM pragma_foreign_key_list(?)', (name,)).fetchall()
    ]
    statements: list[Statement] = []
    for name in _parents_first(names, references):
        table = quote(name)
        info = database.execute_sql(  # (hidden: a generated column, which takes no value)
            "SELECT name, pk FROM pragma_table_xinfo(?) WHERE NOT hidden", (name,)
        ).fetchall()
        listed = ", ".join(quote(column) for column, _ in info)
        rows = database.execute_sql(f"SELECT {listed} FROM {table}").fetchall()
        if not rows:
            continue
        unique = any(pk for _, pk in info) or bool(
            database.execute_sql('SELECT 1 FROM pragma_index_list(?) WHERE "unique"', (name,)).fetchall()
        )
        marks = "(" + ", ".join("?" * len(info)) + ")"
        per_chunk = max(1, _SQLITE_PARAMETERS // len(info))
        for start in range(0, len(rows), per_chunk):
            chunk = rows[start : start + per_chunk]
            values = ", ".join([marks] * len(chunk))
            params = [value for row in chunk for value in row]
            if unique:
                statements.append((f"INSERT OR IGNORE INTO {table} ({listed}) VALUES {values}", params))
            else:  # no key to find a missing row by: all of them, into the table the clear emptied
                statements.append(
                    (
                        f"INSERT INTO {table} ({listed}) SELECT * FROM (VALUES {values}) "
                        f"WHERE (SELECT count(*) FROM {table}) = {start}",
                        params,
                    )
                )
    return statements


_MYSQL_TABLES = (
    "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'"
)
_MYSQL_REFERENCES = """SELECT TABLE_NAME, REFERENCED_TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA = DATABASE() AND UNIQUE_CONSTRAINT_SCHEMA = DATABASE()"""
#: The columns that take a value (not a generated one: MariaDB reports none as NULL, MySQL as '').
_MYSQL_COLUMNS = """SELECT COLUMN_NAME FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND COALESCE(GENERATION_EXPRESSION, '') = ''
ORDER BY ORDINAL_POSITION"""
_MYSQL_UNIQUE = """SELECT 1 FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND NON_UNIQUE = 0 LIMIT 1"""


def _mysql_keep(database: AioDatabase) -> list[Statement]:
    """Read the tables with rows; the statements that put them back, parents first (or none). A row found by a
    key is left as it is (``ON DUPLICATE KEY UPDATE`` of nothing, not ``INSERT IGNORE``, which would hide other
    errors too); MySQL cannot switch triggers off, so putting rows back runs them, as on SQLite."""

    def quoted(name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    names = [name for (name,) in database.execute_sql(_MYSQL_TABLES).fetchall()]
    references = database.execute_sql(_MYSQL_REFERENCES).fetchall()
    statements: list[Statement] = []
    for name in _parents_first(names, references):
        table = quoted(name)
        columns = [quoted(column) for (column,) in database.execute_sql(_MYSQL_COLUMNS, (name,)).fetchall()]
        listed = ", ".join(columns)
        rows = database.execute_sql(f"SELECT {listed} FROM {table}").fetchall()
        if not rows:
            continue
        unique = bool(database.execute_sql(_MYSQL_UNIQUE, (name,)).fetchall())
        marks = "(" + ", ".join(["%s"] * len(columns)) + ")"
        for start in range(0, len(rows), _MYSQL_ROWS):
            chunk = rows[start : start + _MYSQL_ROWS]
            params = [value for row in chunk for value in row]
            if unique:
                values = ", ".join([marks] * len(chunk))
                again = f"{columns[0]} = {columns[0]}"
                statements.append(
                    (f"INSERT INTO {table} ({listed}) VALUES {values} ON DUPLICATE KEY UPDATE {again}", params)
                )
            else:  # no key to find a missing row by: all of them, into the table the clear emptied
                first = "SELECT " + ", ".join(f"%s AS c{index}" for index in range(len(columns)))
                rest = " UNION ALL SELECT " + ", ".join(["%s"] * len(columns))
                union = first + rest * (len(chunk) - 1)
                statements.append(
                    (
                        f"INSERT INTO {table} ({listed}) SELECT * FROM ({union}) AS kept "
                        f"WHERE (SELECT COUNT(*) FROM {table}) = {start}",
                        params,
                    )
                )
    return statements
