"""The test database on a MySQL/MariaDB server: made with its mark, dropped with its sessions killed, never one the
plugin did not make, under ``GET_LOCK``, reused, and copied for each pytest-xdist worker."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import peewee
import peewee_async
import pymysql
import pytest

from peewee_async_testing.building import SchemaBuild
from peewee_async_testing.exceptions import ConfigurationError
from peewee_async_testing.mysqldb import MARK_PROCEDURE, MySQLTestDatabase


class HandMade:
    """A MariaDB server started by hand (until MariaDBServer is merged): $PEEWEE_ASYNC_TESTING_MYSQL_DSN's port."""

    attached = True

    def __init__(self, port: int) -> None:
        self.host, self.port, self.user, self.password, self.database = "127.0.0.1", port, "root", None, None

    def connect_params(self, database: str | None) -> dict[str, object]:
        return {"database": database, "host": self.host, "port": self.port, "user": self.user, "password": None}

    def connect(self, database: str | None = None) -> Any:
        return pymysql.connect(host=self.host, port=self.port, user=self.user, database=database, autocommit=True)


@pytest.fixture(scope="session")
def mysql_server() -> HandMade:
    return HandMade(int(os.environ.get("MYSQL_PORT", "0")) or pytest.skip("no MariaDB server"))


def sql(server: Any, statement: str, params: tuple[Any, ...] = (), database: str | None = None) -> list[Any]:
    """Run one statement on the server (in ``database``); return its rows."""
    connection = server.connect(database)
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            return list(cursor.fetchall())
    finally:
        connection.close()


def schemas(server: Any) -> set[str]:
    return {name for (name,) in sql(server, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")}


def mark_of(server: Any, name: str) -> dict[str, Any]:
    rows = sql(
        server,
        "SELECT ROUTINE_COMMENT FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s AND ROUTINE_NAME = %s",
        (name, MARK_PROCEDURE),
    )
    prefix = "peewee-async-testing test database "
    return dict(json.loads(rows[0][0][len(prefix) :])) if rows else {}


DATABASE = peewee_async.MySQLDatabase(None)


class Note(peewee_async.AioModel):
    text = peewee.CharField(unique=True)

    class Meta:
        database = DATABASE


class Comment(peewee_async.AioModel):
    note = peewee.ForeignKeyField(Note, backref="comments")

    class Meta:
        database = DATABASE


MODELS = [Note, Comment]


@pytest.fixture
def app(mysql_server: Any) -> Iterator[peewee_async.MySQLDatabase]:
    """The app's database object, on its real database ``app`` (holding a sentinel row the plugin must leave);
    every ``test_app...`` database is dropped at the end."""
    sql(mysql_server, "CREATE DATABASE app")
    sql(mysql_server, "CREATE TABLE note (id int PRIMARY KEY AUTO_INCREMENT, text varchar(255))", database="app")
    sql(mysql_server, "INSERT INTO note (text) VALUES ('sentinel')", database="app")
    DATABASE.init("app", host=mysql_server.host, port=mysql_server.port, user=mysql_server.user)
    yield DATABASE
    assert sql(mysql_server, "SELECT text FROM note", database="app") == [("sentinel",)], "the app database was touched"
    left = {name for name in schemas(mysql_server) if name.startswith("test_app")}
    for name in left | {"app"}:
        sql(mysql_server, f"DROP DATABASE `{name}`")


def test_database(app: Any, server: Any, **options: Any) -> MySQLTestDatabase:
    return MySQLTestDatabase(app, MODELS, server=server, module="app.db", **options)


test_database.__test__ = False  # type: ignore[attr-defined]


def tables(server: Any, name: str) -> set[str]:
    rows = sql(server, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (name,))
    return {table for (table,) in rows}


def test_the_test_database_is_made_marked_and_dropped(app: Any, mysql_server: Any) -> None:
    made = test_database(app, mysql_server)
    made.setup()
    assert app.database == "test_app"
    assert tables(mysql_server, "test_app") == {"note", "comment"}
    mark = mark_of(mysql_server, "test_app")
    assert (mark["module"], mark["database"], mark["name"], mark["run"]) == ("app.db", "app", "test_app", made.run)
    assert mark["schema"] == SchemaBuild(MODELS).fingerprint()
    made.teardown()
    assert "test_app" not in schemas(mysql_server)
    assert app.database == "app"


def test_the_drop_kills_the_sessions_still_using_it(app: Any, mysql_server: Any) -> None:
    made = test_database(app, mysql_server)
    made.setup()
    left_open = mysql_server.connect("test_app")  # a connection the code under test never closed
    made.teardown()
    assert "test_app" not in schemas(mysql_server)
    with pytest.raises(pymysql.err.OperationalError):
        left_open.ping(reconnect=False)


@pytest.mark.parametrize("options", [{}, {"drop_stale": True}, {"create": True, "reuse": True}], ids=str)
def test_a_database_the_plugin_did_not_make_is_refused_and_kept(app: Any, mysql_server: Any, options: Any) -> None:
    sql(mysql_server, "CREATE DATABASE test_app")
    sql(mysql_server, "CREATE TABLE note (text text)", database="test_app")
    sql(mysql_server, "INSERT INTO note VALUES ('theirs')", database="test_app")
    with pytest.raises(ConfigurationError, match="already exists and is not a test database of this project"):
        test_database(app, mysql_server, **options).setup()
    assert sql(mysql_server, "SELECT text FROM note", database="test_app") == [("theirs",)]
    assert app.database == "app"


def test_another_projects_database_is_refused_and_kept(app: Any, mysql_server: Any) -> None:
    other = MySQLTestDatabase(app, MODELS, server=mysql_server, module="other.db", reuse=True)
    other.setup()
    other.teardown()  # kept, for reuse
    sql(mysql_server, "INSERT INTO note (text) VALUES ('theirs')", database="test_app")
    with pytest.raises(ConfigurationError, match=r"made for another project: other\.db, database app"):
        test_database(app, mysql_server, create=True).setup()
    assert sql(mysql_server, "SELECT text FROM note", database="test_app") == [("theirs",)]


def test_a_database_replaced_during_the_session_is_not_dropped(app: Any, mysql_server: Any) -> None:
    made = test_database(app, mysql_server)
    made.setup()
    made._close_holder()
    sql(mysql_server, "DROP DATABASE test_app")
    sql(mysql_server, "CREATE DATABASE test_app")  # someone else's now, under the same name
    sql(mysql_server, "CREATE TABLE note (text text)", database="test_app")
    made.teardown()
    assert tables(mysql_server, "test_app") == {"note"}
    assert made.kept == ["test_app (replaced by another during the session)"]


def test_making_and_dropping_hold_the_projects_lock(app: Any, mysql_server: Any) -> None:
    seen = []

    class Build(SchemaBuild):
        def __call__(self, database: Any) -> None:
            used = sql(mysql_server, "SELECT IS_USED_LOCK(%s)", (lock_name(),))
            seen.append(used[0][0])
            super().__call__(database)

    made = test_database(app, mysql_server, build=Build(MODELS))
    made.setup()
    made.teardown()
    assert seen, "the schema was not built"
    assert seen[0] is not None, "the tables were made without the lock"
    assert sql(mysql_server, "SELECT IS_USED_LOCK(%s)", (lock_name(),)) == [(None,)]


def lock_name() -> str:
    import hashlib

    return "peewee-async-testing " + hashlib.sha256(b"test_app").hexdigest()[:40]


def test_reuse_keeps_the_database_while_its_schema_is_unchanged(app: Any, mysql_server: Any) -> None:
    first = test_database(app, mysql_server, reuse=True)
    first.setup()
    first.teardown()
    sql(mysql_server, "INSERT INTO note (text) VALUES ('kept')", database="test_app")
    second = test_database(app, mysql_server, reuse=True)
    second.setup()
    second.teardown()
    assert second.reused
    assert sql(mysql_server, "SELECT text FROM note", database="test_app") == [("kept",)]
    fresh = test_database(app, mysql_server, reuse=True, create=True)
    fresh.setup()
    fresh.teardown()
    assert not fresh.reused
    assert sql(mysql_server, "SELECT text FROM note", database="test_app") == []


def test_a_crashed_runs_database_is_dropped_as_stale_and_a_held_one_kept(app: Any, mysql_server: Any) -> None:
    crashed = test_database(app, mysql_server, suffix="one")
    crashed.setup()
    crashed._close_holder()  # killed: nothing dropped, nobody holds it
    crashed._restore_object()
    live = test_database(app, mysql_server, suffix="two")
    live.setup()
    live._restore_object()
    try:
        now = test_database(app, mysql_server, drop_stale=True)
        now.setup()
        now.teardown()
        assert now.dropped_stale == ["test_app_one"]
        assert "test_app_one" not in schemas(mysql_server)
        assert "test_app_two" in schemas(mysql_server), "a database a live session holds was dropped"
    finally:
        live._close_holder()


def test_each_xdist_worker_gets_a_copy_of_the_tables_and_rows(app: Any, mysql_server: Any) -> None:
    seeded = []

    class Build(SchemaBuild):
        def __call__(self, database: Any) -> None:
            super().__call__(database)
            with database.allow_sync():
                Note.create(text="seed")
            seeded.append(database.database)

    workers = [
        test_database(app, mysql_server, worker=worker, run="run-1", build=Build(MODELS)) for worker in ("gw0", "gw1")
    ]
    workers[0].setup()
    workers[0]._restore_object()
    workers[1].setup()
    try:
        assert seeded == ["test_app"], "the schema was built more than once"
        for name in ("test_app_gw0", "test_app_gw1"):
            assert tables(mysql_server, name) == {"note", "comment"}
            assert sql(mysql_server, "SELECT text FROM note", database=name) == [("seed",)]
            sql(mysql_server, "INSERT INTO note (text) VALUES ('x')", database=name)
            with pytest.raises(pymysql.err.IntegrityError):  # the foreign key came along
                sql(mysql_server, "INSERT INTO comment (note_id) VALUES (99)", database=name)
            assert mark_of(mysql_server, name)["template"] == "test_app"
    finally:
        workers[1].teardown()
        workers[0].teardown()
    assert not {name for name in schemas(mysql_server) if name.startswith("test_app")}
