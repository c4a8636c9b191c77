"""The test database: made beside the configured one under a name of its own, pointed at, kept
(``--peewee-reuse-db``) or dropped, kept apart by a suffix, and the database object restored after the session,
also when set-up fails half-way."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from peewee_async_testing import PostgresServer
from peewee_async_testing.ownership import database_name

from ..helpers import admin, databases
from .project import APP_DB, APP_MODELS, CONFIGURED, ISOLATED_TESTS, make_ini

ONE_TEST = "import pytest\n\n@pytest.mark.peewee_db\nasync def test_x():\n    pass\n"
SQLITE_DB = "import peewee_async\n\ndatabase = peewee_async.SqliteDatabase({path!r})\n"
#: A conftest that writes, once the plugin is done, whether every attribute of the database object is the one
#: the app made.
RESTORED = """
import pytest
from app.db import database

BEFORE = dict(vars(database))  # as the app made it, before the plugin configures

@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):  # after the plugin's own
    after = vars(database)
    restored = after.keys() == BEFORE.keys() and all(after[key] is BEFORE[key] for key in BEFORE)
    config.rootpath.joinpath("restored").write_text(str(restored))
"""


def test_the_database_object_is_restored_after_the_session(inner: pytest.Pytester) -> None:
    inner.makeconftest(RESTORED)
    inner.makepyfile(
        """
        import pytest
        from app.db import database

        @pytest.mark.peewee_db
        async def test_pointed():
            assert database.database == "test_app"
        """
    )
    inner.runpytest().assert_outcomes(passed=1)
    assert inner.path.joinpath("restored").read_text() == "True"


def test_reuse_db_keeps_the_database_for_the_next_run(inner: pytest.Pytester, pg_server: PostgresServer) -> None:
    inner.makepyfile(
        """
        import pytest
        from app.models import Note

        @pytest.mark.peewee_db
        async def test_it():
            await Note.aio_create(text="x")
        """
    )
    first = inner.runpytest("--peewee-reuse-db")
    first.assert_outcomes(passed=1)
    first.stdout.fnmatch_lines(["peewee-async-testing: test database test_app on * (created, kept)"])
    oid = admin(pg_server, "SELECT oid FROM pg_database WHERE datname = 'test_app'")
    assert oid, "--peewee-reuse-db dropped the database"

    second = inner.runpytest("--peewee-reuse-db")
    second.assert_outcomes(passed=1)
    second.stdout.fnmatch_lines(["peewee-async-testing: test database test_app on * (reused, kept)"])
    assert admin(pg_server, "SELECT oid FROM pg_database WHERE datname = 'test_app'") == oid

    inner.path.joinpath("app", "models.py").write_text(APP_MODELS.replace("unique=True", "unique=True, null=True"))
    changed = inner.runpytest("--peewee-reuse-db")
    changed.stdout.fnmatch_lines(["peewee-async-testing: test database test_app on * (created, kept)"])

    admin(pg_server, "INSERT INTO note (text) VALUES ('left over')", database="test_app")
    oid = admin(pg_server, "SELECT oid FROM pg_database WHERE datname = 'test_app'")
    fresh = inner.runpytest("--peewee-reuse-db", "--peewee-create-db")  # as pytest-django's: afresh, and kept
    fresh.assert_outcomes(passed=1)
    fresh.stdout.fnmatch_lines(["peewee-async-testing: test database test_app on * (created, kept)"])
    assert admin(pg_server, "SELECT oid FROM pg_database WHERE datname = 'test_app'") not in ([], oid)
    assert admin(pg_server, "SELECT text FROM note", database="test_app") == [], "not made afresh"
    admin(pg_server, "DROP DATABASE test_app")


def test_a_suffix_keeps_runs_that_share_a_server_apart(inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    inner.makepyfile(ONE_TEST)
    inner.runpytest("--peewee-db-suffix", "shard-1").stdout.fnmatch_lines(["*test database test_app_shard_1_* on *"])
    monkeypatch.setenv("PEEWEE_ASYNC_TESTING_DB_SUFFIX", "ci7")
    inner.runpytest().stdout.fnmatch_lines(["*test database test_app_ci7 on *"])


@pytest.mark.parametrize("server", ["throwaway", "sqlite"])
def test_reuse_db_says_it_has_no_effect_where_nothing_outlives_the_run(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, server: str
) -> None:
    monkeypatch.delenv("PEEWEE_ASYNC_TESTING_DSN")
    if server == "sqlite":
        inner.path.joinpath("app", "db.py").write_text(SQLITE_DB.format(path="app.db"))
    inner.makepyfile(ONE_TEST)
    result = inner.runpytest("--peewee-reuse-db")
    result.assert_outcomes(passed=1)
    how = "removed with the server" if server == "throwaway" else "removed"
    result.stdout.fnmatch_lines([f"*test database * (created, {how}; --peewee-reuse-db has no effect on *)"])


NAME_PAIRS = [("Shop", "shop"), ("café", "cafè"), ("shop-api", "shop_api"), ("shop.v2", "shop")]


@pytest.mark.parametrize(("one", "other"), NAME_PAIRS)
def test_two_configured_names_never_share_a_test_database(
    inner: pytest.Pytester, pg_server: PostgresServer, one: str, other: str
) -> None:
    inner.makepyfile(ONE_TEST)
    before, made = databases(pg_server), set()  # (this run's own test_... databases are not the inner runs')
    try:
        for name in (one, other):
            inner.path.joinpath("app", "db.py").write_text(APP_DB.replace('"app"', repr(name)))
            inner.runpytest("--peewee-reuse-db").assert_outcomes(passed=1)
            made |= {found for found in databases(pg_server) - before if found.startswith("test_")}
        assert len(made) == 2, f"{one!r} and {other!r} got {made}"
    finally:
        for name in made:
            admin(pg_server, f'DROP DATABASE "{name}"')


def test_test_database_names_are_readable_and_fit_in_63_bytes() -> None:
    assert database_name("shop") == "test_shop"
    assert database_name("shop", suffix="ci7", worker="gw3") == "test_shop_ci7_gw3"
    assert database_name("Shop").startswith("test_shop_")
    assert database_name(None, module="myapp.db") == "test_myapp"
    assert database_name("/data/app.db", sqlite=True) == "test_app"
    long = ["é" * 70 + "x", "é" * 70 + "y", "a" * 70 + "é", "a" * 70 + "è"]
    names = [database_name(name, suffix="süffix" * 5, worker="gw12") for name in long]
    assert len(set(names)) == len(names), names
    for name in names:
        assert len(name.encode()) <= 63, name
        assert name.startswith("test_"), name
        assert name.endswith("_gw12"), name


def test_no_two_names_or_suffixes_share_a_test_database() -> None:
    pairs = [
        (database_name("shop", worker="gw0"), database_name("shop_gw0")),  # a worker's clone, a name like one
        (database_name("shop", worker="gw0"), database_name("shop", suffix="gw0")),
        (database_name("shop", suffix="ci", worker="gw1"), database_name("shop", suffix="ci_gw1")),
        (database_name("SHOP.daTaBaSe!"), database_name("sHOp+dAtABASe~")),  # the same 32-bit hash
        (database_name("shop", suffix="py3.11"), database_name("shop", suffix="py3-11")),
        (database_name("shop", suffix="py3.11"), database_name("shop", suffix="py3_11")),
    ]
    for one, other in pairs:
        assert one != other
    assert database_name("shop", suffix="py3.11").startswith("test_shop_py3_11_")
    assert len(database_name("shop", suffix="py3.11")) == len("test_shop_py3_11_") + 12  # a 12-hex-digit hash
    assert database_name("shop", suffix="shard7") == "test_shop_shard7"  # a plain suffix stays as it is


BROKEN_MODEL = """

class Broken(peewee_async.AioModel):
    class Meta:
        database = database
        constraints = [peewee.SQL("NOT A CONSTRAINT")]
"""


@pytest.mark.parametrize("workers", [(), ("-n", "2", "-p", "no:benchmark")], ids=["session", "xdist"])
def test_a_set_up_that_fails_half_way_leaves_nothing_behind(
    inner: pytest.Pytester, pg_server: PostgresServer, workers: tuple[str, ...]
) -> None:
    inner.path.joinpath("app", "models.py").write_text(APP_MODELS + BROKEN_MODEL)
    inner.makeconftest(RESTORED)
    inner.makepyfile(**{f"test_{i}": ONE_TEST for i in range(4)})
    result = inner.runpytest(*workers)
    # Said once: the session ends at once (under pytest-xdist, each worker stops after one error).
    assert result.ret == (pytest.ExitCode.INTERRUPTED if workers else pytest.ExitCode.USAGE_ERROR)
    if workers:
        result.assert_outcomes(errors=2)  # one per worker, of four tests
    else:
        assert result.stdout.str().count("syntax error") == 1
    assert not {name for name in databases(pg_server) if name.startswith("test_app")}
    if not workers:
        assert inner.path.joinpath("restored").read_text() == "True"


def test_a_refused_clone_drops_only_what_its_worker_made(inner: pytest.Pytester, pg_server: PostgresServer) -> None:
    admin(pg_server, "CREATE DATABASE test_app_gw1")  # a user's, named as a worker's clone would be
    admin(pg_server, "CREATE TABLE note (text text)", database="test_app_gw1")
    admin(pg_server, "INSERT INTO note VALUES ('theirs')", database="test_app_gw1")
    try:
        make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
        inner.makepyfile(**{f"test_{i}": "async def test_x():\n    pass\n" for i in range(4)})
        result = inner.runpytest("-n", "2", "-p", "no:benchmark")
        assert result.ret == pytest.ExitCode.INTERRUPTED  # the worker stops after saying it once
        result.stdout.fnmatch_lines(['*The database "test_app_gw1" * is not a test database of this project*'])
        assert {name for name in databases(pg_server) if name.startswith("test_app")} == {"test_app_gw1"}
        assert admin(pg_server, "SELECT text FROM note", database="test_app_gw1") == [("theirs",)]
    finally:
        admin(pg_server, "DROP DATABASE test_app_gw1")


def test_an_sqlite_set_up_that_fails_half_way_leaves_nothing_behind(
    inner: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PEEWEE_ASYNC_TESTING_DSN")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the test database's folder is made
    inner.path.joinpath("app", "db.py").write_text(SQLITE_DB.format(path=str(tmp_path / "app.db")))
    inner.path.joinpath("app", "models.py").write_text(APP_MODELS + BROKEN_MODEL)
    inner.makeconftest(RESTORED)
    inner.makepyfile(ONE_TEST)
    assert inner.runpytest().ret == pytest.ExitCode.USAGE_ERROR
    assert not list(tmp_path.iterdir()), "the SQLite folder was left behind"
    assert inner.path.joinpath("restored").read_text() == "True"


def test_a_proxy_to_a_psycopg3_database_is_configured_the_same(inner: pytest.Pytester) -> None:
    inner.path.joinpath("app", "db.py").write_text(
        APP_DB.replace("database = peewee_async.PostgresqlDatabase(", "real = peewee_async.Psycopg3Database(")
        + "\nimport peewee\n\ndatabase = peewee.DatabaseProxy()\ndatabase.initialize(real)\n"
    )
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makepyfile(
        test_proxy=ISOLATED_TESTS
        + """
from app.db import real

def test_the_proxied_database_was_pointed():
    assert real.database == "test_app"
"""
    )
    result = inner.runpytest()
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["*test database test_app on * (created, dropped)"])


def test_sqlite_gets_a_temporary_file(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    original = tmp_path / "app.db"
    pytester.makepyfile(
        lite=f"""
        import peewee
        import peewee_async

        database = peewee_async.SqliteDatabase({str(original)!r})

        class Item(peewee_async.AioModel):
            name = peewee.CharField()

            class Meta:
                database = database
        """
    )
    make_ini(pytester, "peewee_async_database = lite:database\npeewee_async_autouse = true")
    pytester.syspathinsert()
    pytester.makepyfile(
        test_lite="""
        from lite import Item, database

        async def test_one():
            assert database.database.endswith("test_app.db")
            await Item.aio_create(name="x")

        async def test_two():
            assert await Item.select().aio_count() == 0
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test database */test_app.db (SQLite) (created, removed)"])
    assert not original.exists(), "the configured SQLite file was created or touched"
