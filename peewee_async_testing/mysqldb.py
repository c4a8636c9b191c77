"""The session's test database on a MySQL or MariaDB server: :class:`~.testdb.TestDatabase` on MySQL's terms.

The same lifecycle as on PostgreSQL (see :mod:`~peewee_async_testing.testdb`), with MySQL's means:

- the lock around making and dropping is ``GET_LOCK`` (held by the admin connection, released with it);
- the mark (:mod:`~peewee_async_testing.ownership`) is the comment of a procedure ``peewee_async_testing_mark``
  made in the database at once: MySQL 8 has no database comments (MariaDB's ``CREATE DATABASE ... COMMENT``
  is its own), and a procedure is not a table, so neither the app's queries, ``clear_tables`` nor a schema check
  see it. A database without it, or whose mark names another project or name, is never used nor dropped;
  a session drops at its end only a database whose mark names this very run, its connections killed first
  (``KILL`` the threads ``information_schema.PROCESSLIST`` shows using it);
- a database is held (never stale) while a connection uses it: a thread of ``PROCESSLIST`` whose ``DB`` it is;
- MySQL has no template databases: a pytest-xdist worker's database is made empty and gets the template's tables
  by replaying their ``SHOW CREATE TABLE`` (with ``FOREIGN_KEY_CHECKS = 0``, so that the order does not matter)
  and their rows with ``INSERT ... SELECT`` (seed rows, a migration history). On MariaDB 10.11, for 30 tables
  with foreign keys, that took 40 ms a worker, where building the tables from the models again took 170 ms
  (and running migrations takes longer still) and ``mariadb-dump | mariadb`` 75 ms (two processes, client
  binaries needed); ``CREATE TABLE ... LIKE`` (27 ms) loses the foreign keys. Views and routines, whose
  definitions name the template's database, are not copied: a schema with them is refused under xdist.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .exceptions import ConfigurationError
from .mariadb import MariaDBServer
from .ownership import MARK, Found, execute, fetch, like_prefix, of_project
from .testdb import TestDatabase

#: The procedure whose comment is the mark of a test database.
MARK_PROCEDURE = "peewee_async_testing_mark"
#: How long ``GET_LOCK`` waits for another session's set-up (a year: MySQL has no "for ever").
_LOCK_WAIT = 31536000
_NO_SUCH_PROCEDURE = 1305
_NO_SUCH_THREAD = 1094
_NO_SUCH_DATABASE = 1008
_DENIED = (1044, 1045, 1227, 1370)

_FIND = f"""
SELECT s.SCHEMA_NAME, 0, r.ROUTINE_COMMENT, '', 1,
    (SELECT MIN(p.ID) FROM information_schema.PROCESSLIST AS p WHERE p.DB = s.SCHEMA_NAME AND p.ID <> CONNECTION_ID())
FROM information_schema.SCHEMATA AS s
LEFT JOIN information_schema.ROUTINES AS r
    ON r.ROUTINE_SCHEMA = s.SCHEMA_NAME AND r.ROUTINE_NAME = '{MARK_PROCEDURE}' AND r.ROUTINE_TYPE = 'PROCEDURE'
WHERE {{condition}} ORDER BY s.SCHEMA_NAME
"""


def quote(name: str) -> str:
    """``name`` as a MySQL identifier."""
    return "`" + name.replace("`", "``") + "`"


def find(admin: Any, condition: str, params: Sequence[Any]) -> list[Found]:
    """The server's databases that meet the SQL ``condition`` (on ``s``, ``information_schema.SCHEMATA``, and
    ``r``, the mark's row of ``information_schema.ROUTINES``), by name."""
    return [Found(*row) for row in fetch(admin, _FIND.format(condition=condition), params)]


def copy_tables(source: Any, target: Any, template: str) -> None:
    """Make in ``target`` (a connection to an empty database) the tables of database ``template`` and their rows,
    through ``source`` (an admin connection).

    :raises ConfigurationError: if ``template`` has views or routines, which cannot be copied so.
    """
    others = fetch(
        source,
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'VIEW' UNION ALL "
        "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s AND ROUTINE_NAME <> %s",
        (template, template, MARK_PROCEDURE),
    )
    if others:
        raise ConfigurationError(
            f"The test database {template!r} has views or routines ({', '.join(name for (name,) in others)}), and "
            "pytest-xdist workers on MySQL get copies of its tables alone. Run without -n, or make them in each "
            "worker's database yourself (in a session fixture)."
        )
    tables = [
        name
        for (name,) in fetch(
            source,
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE' "
            "ORDER BY TABLE_NAME",
            (template,),
        )
    ]
    columns: dict[str, list[str]] = {}
    for table, column in fetch(
        source,
        "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
        "AND EXTRA NOT LIKE '%%GENERATED%%' ORDER BY TABLE_NAME, ORDINAL_POSITION",
        (template,),
    ):
        columns.setdefault(table, []).append(quote(column))
    triggers = [
        name
        for (name,) in fetch(
            source, "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s", (template,)
        )
    ]
    execute(target, "SET FOREIGN_KEY_CHECKS = 0")
    try:
        for table in tables:
            execute(target, fetch(source, f"SHOW CREATE TABLE {quote(template)}.{quote(table)}")[0][1])
        for table in tables:
            names = ", ".join(columns[table])
            execute(
                target, f"INSERT INTO {quote(table)} ({names}) SELECT {names} FROM {quote(template)}.{quote(table)}"
            )
        for trigger in triggers:  # after the rows: they must not fire on the copy
            execute(target, fetch(source, f"SHOW CREATE TRIGGER {quote(template)}.{quote(trigger)}")[0][2])
    finally:
        execute(target, "SET FOREIGN_KEY_CHECKS = 1")


class MySQLTestDatabase(TestDatabase):
    """The test database of one pytest session (or xdist worker) on a MySQL or MariaDB server (a
    :class:`~peewee_async_testing.MariaDBServer`): :class:`~.testdb.TestDatabase`'s lifecycle, with MySQL's
    lock, mark, sessions and copies (see the module)."""

    MARK_WORD = f"{MARK_PROCEDURE} procedure"

    @property
    def _mariadb(self) -> MariaDBServer:
        assert isinstance(self.server, MariaDBServer)
        return self.server

    def _server_params(self) -> dict[str, Any]:
        params = self._mariadb.connect_params(None)
        return {key: value for key, value in params.items() if key != "database" and value is not None}

    @contextmanager
    def _admin(self) -> Iterator[Any]:
        connection = self._mariadb.connect(None)
        try:
            yield connection
        finally:
            connection.close()

    @contextmanager
    def _locked(self, admin: Any) -> Iterator[None]:
        """Serialise set-up and clean-up of this project's databases across sessions and workers (``GET_LOCK``:
        its name is at most 64 characters on MySQL 8, hence a hash)."""
        key = "peewee-async-testing " + hashlib.sha256(self.family.encode()).hexdigest()[:40]
        if fetch(admin, "SELECT GET_LOCK(%s, %s)", (key, _LOCK_WAIT))[0][0] != 1:
            raise ConfigurationError(f"Could not take the lock {key!r} on {self._where()} to make the test database.")
        try:
            yield
        finally:
            execute(admin, "DO RELEASE_LOCK(%s)", (key,))

    def _hold(self, name: str) -> None:
        """Connect to ``name`` for the session (its thread's ``DB`` is ``name``): a held database is never stale."""
        assert self.server is not None
        self._holder = self.server.connect(name)
        execute(self._holder, "SET SESSION wait_timeout = %s", (_LOCK_WAIT,))  # the server must not end it

    def _find(self, admin: Any, name: str) -> list[Found]:
        return find(admin, "s.SCHEMA_NAME = %s", (name,))

    def _survey(self, admin: Any) -> list[Found]:
        condition = "r.ROUTINE_COMMENT LIKE %s OR s.SCHEMA_NAME = %s OR s.SCHEMA_NAME LIKE %s"
        found = find(admin, condition, (like_prefix(MARK), self.family, like_prefix(self.family + "_")))
        return of_project(found, self.project, self.family)

    def _quote(self, name: str) -> str:
        return quote(name)

    def _create(
        self,
        admin: Any,
        name: str,
        *,
        template: str | None = None,
        fingerprint: str = "",
        mark: bool = True,
    ) -> None:
        """``CREATE DATABASE name``, marked as this project's at once; its tables copied from ``template``, else
        made here; marked with its schema once it has them."""
        assert self.server is not None
        execute(admin, f"CREATE DATABASE {quote(name)}")
        self._made[name] = int(mark)  # (its mark, naming this run, tells it apart: see _drop_made)
        if mark:  # at once: a run killed before its mark leaves a database that blocks the name
            self._mark(admin, name, template=template, schema="")
        # Its first connection ours, so that a refusal is said with the DSN masked (PyMySQL's frames hold it).
        connection = self.server.connect(name)
        try:
            if template is not None:
                copy_tables(admin, connection, template)
        finally:
            connection.close()
        if template is None:
            self._use(name)
            self.build(self.database)
        if mark:
            self._mark(admin, name, template=template, schema=fingerprint)

    def _mark(self, admin: Any, name: str, *, template: str | None, schema: str) -> None:
        import pymysql

        mark = self.project.mark(name, template=template, schema=schema, run=self.run, kept=self.reuse)
        procedure = f"{quote(name)}.{MARK_PROCEDURE}"
        try:
            execute(admin, f"ALTER PROCEDURE {procedure} COMMENT %s", (mark,))
        except pymysql.MySQLError as error:
            if error.args[0] != _NO_SUCH_PROCEDURE:
                raise
            execute(admin, f"CREATE PROCEDURE {procedure}() COMMENT %s BEGIN END", (mark,))

    def _drop(self, admin: Any, found: Found) -> str | None:
        """Drop ``found``, which is not this session's own, unless a connection uses it: None, else why it is kept."""
        import pymysql

        assert self.server is not None
        if found.held_by is not None:
            return "in use"
        try:
            execute(admin, f"DROP DATABASE {quote(found.name)}")
        except pymysql.MySQLError as error:
            if error.args[0] in _DENIED:
                return f"not to be dropped by {self.server.user}"
            if error.args[0] != _NO_SUCH_DATABASE:  # (gone already)
                raise
        return None

    def _drop_made(self, admin: Any, name: str) -> None:
        """Drop ``name`` if it is still the database this session made (its mark names this run), the threads
        using it killed first."""
        import pymysql

        marked = self._made.pop(name, None)
        if marked is None:
            return
        found = self._find(admin, name)
        ours = bool(found) and self.project.whose(found[0]) is None and found[0].mark.get("run") == self.run
        if marked and not ours:  # (an unmarked one is on a throwaway server: nobody else's)
            self.kept.append(f"{name} (replaced by another during the session)")
            return
        users = fetch(
            admin, "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND ID <> CONNECTION_ID()", (name,)
        )
        for (thread,) in users:
            try:
                execute(admin, f"KILL CONNECTION {int(thread)}")
            except pymysql.MySQLError as error:
                if error.args[0] != _NO_SUCH_THREAD:  # (it ended meanwhile)
                    raise
        execute(admin, f"DROP DATABASE IF EXISTS {quote(name)}")
