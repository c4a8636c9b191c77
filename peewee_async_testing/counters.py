"""``reset_sequences`` on MySQL and MariaDB: the tables' ``AUTO_INCREMENT`` counters, moved and set back.

A rollback leaves the counters where the test's inserts moved them. A block with ``reset_sequences`` notes every
counter of the database before its transaction begins, moves each one whose next value is not one past the
table's largest id (a gap left by a test without the option) there, and, after the rollback, sets back each one
that has changed since. ``ALTER TABLE`` commits implicitly, so this runs only outside a transaction: before
``START TRANSACTION`` and after ``ROLLBACK``; a nested block (on a savepoint) cannot do it.

MariaDB reads the counters live from ``information_schema``; MySQL 8 caches them unless
``information_schema_stats_expiry`` is 0, which is set for the session first.
"""

from __future__ import annotations

from typing import Any

from .drivers import fetch_all

#: A counter as a block found it: (table, next value).
Counter = tuple[str, int]

#: Every table of the current database with an AUTO_INCREMENT column: the table, the column, the counter.
_COUNTERS = (
    "SELECT c.TABLE_NAME, c.COLUMN_NAME, t.AUTO_INCREMENT FROM information_schema.COLUMNS AS c "
    "JOIN information_schema.TABLES AS t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME "
    "WHERE c.TABLE_SCHEMA = DATABASE() AND c.EXTRA LIKE '%auto_increment%' AND t.TABLE_TYPE = 'BASE TABLE' "
    "AND t.AUTO_INCREMENT IS NOT NULL ORDER BY c.TABLE_NAME"
)


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


async def _read(raw: Any) -> list[tuple[str, str, int]]:
    if "mariadb" not in str(raw.get_server_info()).lower():
        await fetch_all(raw, "SET SESSION information_schema_stats_expiry = 0")  # MySQL 8 caches the counters
    return [(str(table), str(column), int(counter)) for table, column, counter in await fetch_all(raw, _COUNTERS)]


async def _alter(raw: Any, counters: list[Counter]) -> None:
    if counters:
        await fetch_all(
            raw, "; ".join(f"ALTER TABLE {_quoted(table)} AUTO_INCREMENT = {int(n)}" for table, n in counters)
        )


async def reset(raw: Any) -> list[Counter]:
    """Move every counter to one past its table's largest id (1 for an empty table); return the counters as they
    were before, for :func:`set_back`. Three round trips at most: the counters, the largest ids, the moves."""
    found = await _read(raw)
    if not found:
        return []
    largest = " UNION ALL ".join(
        f"SELECT {index}, MAX({_quoted(column)}) FROM {_quoted(table)}"
        for index, (table, column, _) in enumerate(found)
    )
    ends = {int(index): top for index, top in await fetch_all(raw, largest)}
    moved = [(table, 1 if ends[index] is None else int(ends[index]) + 1) for index, (table, _, _) in enumerate(found)]
    now = [counter for _, _, counter in found]
    await _alter(raw, [(table, next_) for (table, next_), was in zip(moved, now, strict=True) if next_ != was])
    return [(table, counter) for table, _, counter in found]


async def set_back(raw: Any, counters: list[Counter]) -> None:
    """Set back the ``counters`` that :func:`reset` noted, where they are not there now (after the rollback)."""
    noted = dict(counters)
    now = await _read(raw)
    await _alter(
        raw, [(table, noted[table]) for table, _, counter in now if table in noted and counter != noted[table]]
    )
