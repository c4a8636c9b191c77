"""use_test_database: ``python -m unittest`` on a module whose setUpModule makes its test database in one line.

Each run is a real ``python -m unittest`` in a subprocess. The module reports what it saw during its tests (the
test database, the server's databases, the server's process and folder) and, from an ``atexit`` handler, so
after unittest's module clean-ups but before the process exits (where a server's watchdog would hide a leak),
what was left.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import unittest
from collections.abc import Iterator
from typing import Any

import peewee
import peewee_async
import pytest

from peewee_async_testing import ConfigurationError, MariaDBServer, PostgresServer, use_test_database
from peewee_async_testing import server as server_module

from .helpers import databases, mysql_admin, needs_one_loop
from .production import PASSWORD, ROLE, Production
from .test_server import _processes_mentioning
from .test_server_lifetime import _running

pytestmark = needs_one_loop

MODULE = """
import atexit, json, os, unittest

import peewee
import peewee_async

from peewee_async_testing import AioDatabaseTestCase, MariaDBServer, use_test_database

database = {database}
BEFORE = (database.database, dict(database.connect_params))
REPORT = {report!r}
seen = {{}}


class Note(peewee_async.AioModel):
    text = peewee.CharField()

    class Meta:
        database = database


def setUpModule():
    seen["server"] = use_test_database(database)


class TestNotes(AioDatabaseTestCase):
    database = database

    async def test_a_writes(self):
        await Note.aio_create(text="x")
        self.assertEqual(await Note.select().aio_count(), 1)

    async def test_b_starts_empty(self):
        self.assertEqual(await Note.select().aio_count(), 0)


def server_databases(server):
    if server is None:
        return []
    if isinstance(server, MariaDBServer):
        sql, connection = "SHOW DATABASES", server.connect()
    else:
        sql, connection = "SELECT datname FROM pg_database", server.connect(server.database)
    with connection.cursor() as cursor:
        cursor.execute(sql)
        names = [name for (name,) in cursor.fetchall()]
    connection.close()
    return names


def where(server):
    if server is None:
        return os.path.dirname(database.database), None
    if server.attached:
        return None, None
    folder = server.socket_dir
    pid_file = folder / "mariadbd.pid" if (folder / "mariadbd.pid").exists() else folder / "data" / "postmaster.pid"
    return str(folder), int(pid_file.read_text().split()[0])


def tearDownModule():  # before the module's clean-ups
    server = seen["server"]
    folder, pid = where(server)
    seen["during"] = {{
        "name": database.database,
        "databases": server_databases(server),
        "file": os.path.exists(database.database) if server is None else None,
        "folder": folder,
        "pid": pid,
    }}


def after():
    during = seen.get("during", {{}})
    folder, pid = during.get("folder"), during.get("pid")
    try:
        alive = pid is not None and os.kill(pid, 0) is None
    except OSError:
        alive = False
    left = {{
        "restored": (database.database, dict(database.connect_params)) == BEFORE,
        "folder": folder is not None and os.path.exists(folder),
        "pid": alive,
    }}
    with open(REPORT, "w") as report:
        json.dump({{"during": during, "after": left}}, report)


atexit.register(after)
"""


def run_module(tmp_path: pathlib.Path, database: str, **env: str) -> dict[str, Any]:
    """Run ``python -m unittest`` on a module whose database object is ``database`` (Python source); return what
    it reported, once its two tests have passed."""
    report = tmp_path / "report.json"
    (tmp_path / "test_notes.py").write_text(MODULE.format(database=database, report=str(report)))
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PEEWEE_ASYNC_TESTING_")}
    environment.update(env)
    result = subprocess.run(
        [sys.executable, "-m", "unittest", "-v", "test_notes"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Ran 2 tests" in result.stderr
    assert "OK" in result.stderr
    reported: dict[str, Any] = json.loads(report.read_text())
    assert reported["after"] == {"restored": True, "folder": False, "pid": False}
    return reported


def assert_no_server_left(reported: dict[str, Any]) -> None:
    folder, pid = reported["during"]["folder"], reported["during"]["pid"]
    assert folder is not None
    assert pid is not None
    assert not _running(pid)
    assert _processes_mentioning(folder) == []
    assert not pathlib.Path(folder).exists()


def production_database(driver: str, production: Production) -> str:
    """The source of a database object on the user's real database, ``shop`` (which the run must not reach)."""
    cls = "PostgresqlDatabase" if driver == "aiopg" else "Psycopg3Database"
    return (
        f"peewee_async.{cls}('shop', host={production.host!r}, port={production.port}, user={ROLE!r}, "
        f"password={PASSWORD!r})"
    )


@pytest.mark.parametrize("driver", ["aiopg", "psycopg"])
def test_postgres_gets_test_shop_on_a_throwaway_server_removed_after(
    driver: str, tmp_path: pathlib.Path, production: Production
) -> None:
    reported = run_module(tmp_path, production_database(driver, production))
    assert reported["during"]["name"] == "test_shop"
    assert "test_shop" in reported["during"]["databases"]
    assert "shop" not in reported["during"]["databases"]
    assert_no_server_left(reported)


def test_postgres_dsn_from_the_environment_gets_test_shop_dropped_after(
    tmp_path: pathlib.Path, production: Production, pg_server: PostgresServer
) -> None:
    before = databases(pg_server)
    reported = run_module(tmp_path, production_database("aiopg", production), PEEWEE_ASYNC_TESTING_DSN=pg_server.dsn)
    assert reported["during"]["name"] == "test_shop"
    assert "test_shop" in reported["during"]["databases"]
    assert (reported["during"]["folder"], reported["during"]["pid"]) == (None, None)  # no server of its own
    assert databases(pg_server) == before  # test_shop dropped, shop never made


def test_sqlite_gets_a_file_in_a_temporary_folder_removed_after(tmp_path: pathlib.Path) -> None:
    real = tmp_path / "shop.db"
    reported = run_module(tmp_path, f"peewee_async.SqliteDatabase({str(real)!r})")
    name = pathlib.Path(reported["during"]["name"])
    assert name.name == "test_shop.db"
    assert reported["during"]["file"] is True
    assert not name.parent.exists()
    assert not real.exists()


def test_mysql_gets_test_shop_on_a_throwaway_mariadb_server_removed_after(tmp_path: pathlib.Path) -> None:
    reported = run_module(tmp_path, "peewee_async.MySQLDatabase('shop', host='127.0.0.1', port=9)")
    assert reported["during"]["name"] == "test_shop"
    assert "test_shop" in reported["during"]["databases"]
    assert "shop" not in reported["during"]["databases"]
    assert_no_server_left(reported)


def test_mysql_dsn_from_the_environment_gets_test_shop_dropped_after(
    tmp_path: pathlib.Path, mysql_server: MariaDBServer
) -> None:
    def names() -> set[str]:
        return {name for (name,) in mysql_admin(mysql_server, "SHOW DATABASES")}

    before = names()
    database = f"peewee_async.MySQLDatabase('shop', host='127.0.0.1', port={mysql_server.port}, user='root')"
    reported = run_module(tmp_path, database, PEEWEE_ASYNC_TESTING_MYSQL_DSN=mysql_server.dsn)
    assert "test_shop" in reported["during"]["databases"]
    assert names() == before  # test_shop dropped, shop never made


# -- what it refuses, and what a failure half-way leaves: nothing ------------------------------------------------


@pytest.fixture
def scratch(monkeypatch: pytest.MonkeyPatch) -> Iterator[pathlib.Path]:
    """Where the throwaway servers and SQLite folders of this test go, to see that none is left."""
    folder = pathlib.Path(tempfile.mkdtemp(prefix="pat-unittest-scratch-", dir=server_module._temp_parent()))
    folder.chmod(0o755)  # (readable by the server's OS account)
    monkeypatch.setattr(server_module, "_temp_parent", lambda: str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    for name in ("PEEWEE_ASYNC_TESTING_DSN", "PEEWEE_ASYNC_TESTING_MYSQL_DSN"):
        monkeypatch.delenv(name, raising=False)
    yield folder
    if not _processes_mentioning(str(folder)):  # (else a server is left: its watchdog removes it with the folder)
        shutil.rmtree(folder)


def set_up_module(database: Any, models: Any = None) -> Any:
    """use_test_database(), called as it is meant to be: from a ``setUpModule()``."""

    def setUpModule() -> Any:  # the name unittest gives it
        return use_test_database(database, models)

    return setUpModule()


def _model(database: Any, check: str = "text <> ''") -> type[peewee.Model]:
    """A model of table ``note``, bound to ``database``, with the constraint ``CHECK (check)``."""

    class Note(peewee_async.AioModel):  # type: ignore[misc]  # peewee-async ships no types: AioModel is Any
        text = peewee.CharField()

        class Meta:
            constraints = (peewee.SQL(f"CHECK ({check})"),)

    Note.bind(database)
    return Note


@pytest.mark.parametrize("kind", ["postgres", "sqlite"])
def test_a_failed_build_leaves_nothing_and_the_object_as_it_was(kind: str, scratch: pathlib.Path) -> None:
    if kind == "postgres":
        database = peewee_async.PostgresqlDatabase("shop", port=9)
    else:
        database = peewee_async.SqliteDatabase(str(scratch / "shop.db"))
    _model(database, check="no_such_column > 0")  # its CREATE TABLE fails
    before = dict(vars(database))
    try:
        with pytest.raises(peewee.DatabaseError, match=r"no_such_column"):
            set_up_module(database)
    finally:
        unittest.doModuleCleanups()  # (none, unless it succeeded)
    assert list(scratch.iterdir()) == []
    assert _processes_mentioning(str(scratch)) == []
    assert vars(database).keys() == before.keys()
    assert all(vars(database)[name] is value for name, value in before.items())


def test_models_of_another_database_are_refused_before_anything_is_made(scratch: pathlib.Path) -> None:
    database = peewee_async.SqliteDatabase(str(scratch / "shop.db"))
    other = _model(peewee_async.SqliteDatabase(str(scratch / "other.db")))
    with pytest.raises(ConfigurationError, match=r"given models not bound to the database: Note\. Their tables"):
        set_up_module(database, models=[other])
    with pytest.raises(TypeError, match=r"takes a list of models, but was given the class Note"):
        set_up_module(database, models=other)
    assert list(scratch.iterdir()) == []


def test_a_dsn_of_the_other_kind_is_refused_before_anything_is_made(
    scratch: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEEWEE_ASYNC_TESTING_MYSQL_DSN", "postgresql://someone:secret@db.example/postgres")
    database = peewee_async.MySQLDatabase("shop", port=9)
    with pytest.raises(ConfigurationError, match=r"is a MySQL database, but \$PEEWEE_ASYNC_TESTING_MYSQL_DSN"):
        set_up_module(database)
    assert database.database == "shop"
    assert list(scratch.iterdir()) == []


def test_a_call_outside_set_up_module_is_refused_before_anything_is_made(scratch: pathlib.Path) -> None:
    """Called at import, its clean-up would run when the first module of the run ends: the later modules' tests would
    then reach the real database."""
    database = peewee_async.SqliteDatabase(str(scratch / "shop.db"))
    _model(database)
    with pytest.raises(ConfigurationError, match=r"called outside setUpModule\(\): unittest would undo it"):
        use_test_database(database)
    assert database.database == str(scratch / "shop.db")
    assert list(scratch.iterdir()) == []


def test_a_dsn_naming_the_app_database_itself_is_refused_before_connecting(
    scratch: pathlib.Path, monkeypatch: pytest.MonkeyPatch, production: Production
) -> None:
    """The DSN is where the test databases are made from: naming the app's own database there would connect to it."""
    dsn = f"postgresql://{ROLE}:{PASSWORD}@{production.host}:{production.port}/shop"
    monkeypatch.setenv("PEEWEE_ASYNC_TESTING_DSN", dsn)
    database = peewee_async.PostgresqlDatabase("shop", host=production.host, port=production.port, user=ROLE)
    production.mark()
    with pytest.raises(ConfigurationError, match=r"names the database 'shop', which your database object") as error:
        set_up_module(database)
    assert PASSWORD not in str(error.value)
    assert production.sent_to("shop") == []
    assert database.database == "shop"


SHARED_APP = """
import peewee
import peewee_async

database = peewee_async.PostgresqlDatabase("shop")


class Note(peewee_async.AioModel):
    text = peewee.CharField()

    class Meta:
        database = database
"""

SHARED_TEST = """
import os
import unittest

from shop import Note, database
from peewee_async_testing import AioDatabaseTestCase, use_test_database


def setUpModule():
    use_test_database(database)


class Test(AioDatabaseTestCase):
    database = database

    async def test_it(self):
        await Note.aio_create(text="x")
        if os.environ.get("DIE"):
            os._exit(9)  # as a killed run: no clean-up
"""


def test_the_test_modules_of_one_app_share_its_test_database(tmp_path: pathlib.Path, pg_server: PostgresServer) -> None:
    """The test database is the app's (the module of its models), not one test module's: a run of another test module
    takes over the one a killed run of the first left, instead of refusing it as another project's."""
    (tmp_path / "shop.py").write_text(SHARED_APP)
    for name in ("test_notes", "test_other"):
        (tmp_path / f"{name}.py").write_text(SHARED_TEST)
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PEEWEE_ASYNC_TESTING_")}
    environment["PEEWEE_ASYNC_TESTING_DSN"] = pg_server.dsn
    before = databases(pg_server)

    def run(module: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "unittest", module],
            cwd=tmp_path,
            env={**environment, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )

    killed = run("test_notes", DIE="1")
    assert killed.returncode == 9
    assert "test_shop" in databases(pg_server)  # left by the killed run
    result = run("test_other")
    assert result.returncode == 0, result.stderr
    assert databases(pg_server) == before
