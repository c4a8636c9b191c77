"""A stand-in for the user's real database server: password-protected, every connection and statement logged.

Tests of the plugin's safety point an inner project at it and check, from its log, that the session sent
nothing to the app's database ``shop``: no connection, no statement.
"""

from __future__ import annotations

import pathlib
import re
import urllib.parse

import psycopg2

from peewee_async_testing import PostgresServer
from peewee_async_testing import server as server_module

PASSWORD = "s3cr3t-hunter2-p4ss"  # what no output may show
ROLE = "app"
DATABASE = "shop"
SETTINGS = {"log_connections": "on", "log_statement": "all", "log_line_prefix": "db=%d "}
HBA = """
local all all trust
host all postgres 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
"""


class Production:
    """The "production" server: database ``shop`` of role ``app`` (password :data:`PASSWORD`), a table ``item``
    holding one ``sentinel`` row."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        assert server.socket_dir is not None
        self.log = pathlib.Path(server.socket_dir, "postgres.log")
        self.host, self.port = server.host, server.port
        self.password = PASSWORD
        self._mark = 0

    def dsn(self, database: str = "postgres", **query: str) -> str:
        """A URL for role ``app`` with its password, to ``database``, with ``query`` parameters."""
        # %20 for a space: libpq reads no + as one.
        tail = f"?{urllib.parse.urlencode(query, quote_via=urllib.parse.quote)}" if query else ""
        return f"postgresql://{ROLE}:{PASSWORD}@{self.host}:{self.port}/{database}{tail}"

    def admin(self, sql: str, database: str = "postgres") -> list[tuple[object, ...]]:
        connection = psycopg2.connect(dbname=database, host=self.host, port=self.port, user="postgres")
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchall() if cursor.description else []
        finally:
            connection.close()

    def mark(self) -> None:
        """From now on, :meth:`sent_to` reads the log."""
        self._mark = self.log.stat().st_size

    def sent_to(self, database: str = DATABASE) -> list[str]:
        """The log lines since :meth:`mark` of connections to ``database`` and statements run in it."""
        with self.log.open("rb") as log:
            log.seek(self._mark)
            lines = log.read().decode(errors="replace").splitlines()
        pattern = re.compile(rf"db={re.escape(database)} |database={re.escape(database)}\b")
        return [line for line in lines if pattern.search(line)]

    def assert_untouched(self) -> None:
        """Nothing reached ``shop`` since :meth:`mark`: no log line, the sentinel row alone, the sequence unmoved."""
        sent = self.sent_to(DATABASE)
        assert not sent, "the session reached the real database:\n" + "\n".join(sent[:20])
        assert self.admin("SELECT id, name FROM item", DATABASE) == [(1, "sentinel")]
        assert self.admin("SELECT last_value, is_called FROM item_id_seq", DATABASE) == [(1, True)]


def start_production() -> tuple[PostgresServer, Production]:
    server = PostgresServer(settings=SETTINGS)
    server.start()
    # The user's real server is not a throwaway server of this process, which did start this one.
    server_module._RUNNING.discard((server.host, server.port))
    try:
        assert server.socket_dir is not None
        production = Production(server)
        production.admin(f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{PASSWORD}'")
        production.admin(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")
        production.admin(f"SET ROLE {ROLE}; CREATE TABLE item (id serial PRIMARY KEY, name text UNIQUE)", DATABASE)
        production.admin("INSERT INTO item (name) VALUES ('sentinel')", DATABASE)
        hba = pathlib.Path(server.socket_dir, "data", "pg_hba.conf")
        hba.write_text(HBA)
        production.admin("SELECT pg_reload_conf()")
        _wait_for_passwords(production)
        return server, production
    except BaseException:
        server.stop()
        raise


def _wait_for_passwords(production: Production) -> None:
    """The postmaster reloads pg_hba.conf when it gets to it: until then a password-less login still works."""
    for _ in range(10_000):
        try:
            psycopg2.connect(dbname="postgres", host=production.host, port=production.port, user=ROLE).close()
        except psycopg2.OperationalError as error:
            if "password" not in str(error):
                raise
            return
    raise AssertionError("the production server never started asking for passwords")
