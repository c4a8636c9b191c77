"""A fingerprint of a whole database, read from outside the code under test: what a block must leave as it found.

:func:`postgres` reads, on an admin connection of its own (so it sees only what is committed): the schema
(relations, columns, indexes, constraints), every table's rows, every sequence's last value, the session's
advisory locks and the server processes caught inside a transaction. :func:`sqlite` reads the same of an
SQLite file on a connection of its own. :func:`pool_sessions` reads what the server keeps per connection
and only that connection can see (prepared statements), on each idle connection of a peewee-async pool.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import peewee_async
import psycopg2
import psycopg2.errors
from peewee_async.pool import AioSqlitePoolBackend

from .helpers import acquired, is_sqlite

#: How long the admin connection waits for a lock (a table held by a transaction the block left open)
#: before it gives up and notes the table as locked: so a leak shows as a difference, not as a hang.
LOCK_TIMEOUT = "3s"

_RELATIONS = (
    "SELECT c.relname, c.relkind FROM pg_class AS c WHERE c.relnamespace = 'public'::regnamespace ORDER BY 1, 2"
)
_COLUMNS = (
    "SELECT table_name, column_name, data_type, column_default, is_nullable FROM information_schema.columns "
    "WHERE table_schema = 'public' ORDER BY 1, 2"
)
_INDEXES = "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2"
_CONSTRAINTS = (
    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
    "WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
)
_SEQUENCES = (
    "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1"  # NULL: never used
)
_ADVISORY_LOCKS = (
    "SELECT classid, objid, objsubid, mode, granted FROM pg_locks WHERE locktype = 'advisory' "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY 1, 2, 3, 4"
)
# Server processes of this database (not this one) caught inside a transaction: one the block left open.
_IN_TRANSACTION = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
    "AND backend_type = 'client backend' AND xact_start IS NOT NULL"
)


def admin_connection(params: dict[str, Any]) -> Any:
    """A psycopg2 connection in autocommit that waits at most :data:`LOCK_TIMEOUT` for a lock."""
    connection = psycopg2.connect(**params)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'; SET statement_timeout = '30s'")
    return connection


def _rows(cursor: Any, sql: str) -> list[tuple[Any, ...]]:
    cursor.execute(sql)
    return [tuple(row) for row in cursor.fetchall()]


def postgres(admin: Any, *, sequences: bool) -> dict[str, Any]:
    """The committed state of the admin connection's database; ``sequences``: with every sequence's last value
    (which no rollback undoes: only ``reset_sequences`` promises to set them back)."""
    with admin.cursor() as cursor:
        found: dict[str, Any] = {
            "relations": _rows(cursor, _RELATIONS),
            "columns": _rows(cursor, _COLUMNS),
            "indexes": _rows(cursor, _INDEXES),
            "constraints": _rows(cursor, _CONSTRAINTS),
            "advisory locks": _rows(cursor, _ADVISORY_LOCKS),
            "connections inside a transaction": _rows(cursor, _IN_TRANSACTION)[0][0],
        }
        if sequences:
            found["sequences"] = _rows(cursor, _SEQUENCES)
        tables = [name for name, kind in found["relations"] if kind == "r"]
        for table in tables:
            try:
                found[f"rows of {table}"] = sorted(map(repr, _rows(cursor, f'SELECT * FROM "{table}"')))
            except psycopg2.errors.LockNotAvailable:
                found[f"rows of {table}"] = "locked by a transaction still open"
    return found


def sqlite(path: str) -> dict[str, Any]:
    """The committed state of the SQLite file: its schema and every table's rows (sqlite_sequence's too)."""
    connection = sqlite3.connect(path, timeout=3)
    try:
        schema = sorted(connection.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall())
        found: dict[str, Any] = {"schema": schema}
        for kind, name, _, _ in schema:
            if kind == "table":
                try:
                    found[f"rows of {name}"] = sorted(map(repr, connection.execute(f'SELECT * FROM "{name}"')))
                except sqlite3.OperationalError as error:  # locked by a write transaction still open
                    found[f"rows of {name}"] = f"unreadable: {error}"
        return found
    finally:
        connection.close()


class _CountingSqlitePool(AioSqlitePoolBackend):  # type: ignore[misc]
    """peewee-async's SQLite pool, counting the connections it has handed out (its own count is always 0)."""

    out = 0

    async def acquire(self) -> Any:
        connection = await super().acquire()
        self.out += 1
        return connection

    async def release(self, connection: Any) -> None:
        self.out -= 1
        await super().release(connection)

    def has_acquired_connections(self) -> bool:
        return self.out > 0


class SqliteDatabase(peewee_async.SqliteDatabase):  # type: ignore[misc]
    """peewee-async's SQLite database, whose pool tells whether a connection is still checked out."""

    pool_backend_cls = _CountingSqlitePool


async def pool_sessions(db: Any, timeout: float) -> dict[str, Any]:
    """What a peewee-async pool would hand the next user: whether a connection is still checked out, and the
    prepared statements (not the driver's own, ``_pg3_...``) of each idle connection."""
    found: dict[str, Any] = {
        "checked out": db.pool_backend.has_acquired_connections() if is_sqlite(db) else await acquired(db),
        "prepared statements": [],
    }
    if is_sqlite(db) or found["checked out"] or db.pool_backend.pool is None:
        return found  # SQLite opens a connection per acquire and closes it on release: it keeps nothing
    pool = db.pool_backend.pool
    idle = pool.freesize if hasattr(pool, "freesize") else pool.get_stats().get("pool_available", 0)
    taken = [await asyncio.wait_for(db.pool_backend.acquire(), timeout) for _ in range(idle)]
    try:
        statements = []
        for connection in taken:
            async with connection.cursor() as cursor:
                await asyncio.wait_for(
                    cursor.execute("SELECT name FROM pg_prepared_statements WHERE name NOT LIKE '\\_pg3\\_%'"),
                    timeout,
                )
                statements += [name for (name,) in await cursor.fetchall()]
        found["prepared statements"] = sorted(statements)
    finally:
        for connection in taken:
            await db.pool_backend.release(connection)
    return found
