"""A server's password stays secret, and its DSN is honoured: inner sessions pointed at the password-protected
"production" stand-in print no password (default output, ``-l``, ``--tb=long``), name the masked DSN and where
it came from, and every libpq parameter of the DSN reaches the test database's connections, or is refused."""

from __future__ import annotations

from collections.abc import Callable

import psycopg2
import pytest

from ..production import PASSWORD, Production
from .project import APP_DB

USES_THE_DATABASE = """
import pytest
from app.models import Note

@pytest.mark.peewee_db
async def test_it():
    assert await Note.select().aio_count() == 0
"""

#: Each case: the DSN, and what the error shows of it. A wrong password holds the real one, so that printing
#: it would print the real one too.
CASES: dict[str, Callable[[Production], tuple[str, str]]] = {
    "server down": lambda p: (
        f"postgresql://app:{PASSWORD}@127.0.0.1:1/postgres",
        "postgresql://app:***@127.0.0.1:1/postgres",
    ),
    "wrong password": lambda p: (
        p.dsn().replace(PASSWORD, PASSWORD + "-wrong"),
        f"postgresql://app:***@127.0.0.1:{p.port}/postgres",
    ),
    "bad scheme": lambda p: (
        p.dsn().replace("postgresql://", "mysql://"),
        f"mysql://app:***@127.0.0.1:{p.port}/postgres",
    ),
    "invalid port": lambda p: (
        p.dsn().replace(f":{p.port}/", ":notaport/"),
        "postgresql://app:***@127.0.0.1:notaport/postgres",
    ),
    "?password=": lambda p: (
        f"postgresql://app@127.0.0.1:{p.port}/postgres?password={PASSWORD}-wrong&sslmode=disable",
        f"postgresql://app@127.0.0.1:{p.port}/postgres?password=***&sslmode=disable",
    ),
    "?password= with an @": lambda p: (
        f"postgresql://app@127.0.0.1:{p.port}/postgres?password=wrong@{PASSWORD}",
        f"postgresql://app@127.0.0.1:{p.port}/postgres?password=***",
    ),
    "key=value": lambda p: (
        f"host=127.0.0.1 port={p.port} user=app password='{PASSWORD} \\' x' dbname=postgres",
        f"host=127.0.0.1 port={p.port} user=app password=*** dbname=postgres",
    ),
}
#: How each case is run: its options, and where the DSN comes from (``-l`` shows the locals of the frame that
#: read ``--peewee-dsn``, the fixture's).
RUNS = {
    "default": ([], "environment"),
    "-l": (["-l"], "--peewee-dsn"),
    "--tb=long": (["--tb=long"], "environment"),
}
ORIGINS = {"--peewee-dsn": "--peewee-dsn", "environment": "$PEEWEE_ASYNC_TESTING_DSN"}


def _output(result: pytest.RunResult) -> str:
    return result.stdout.str() + "\n" + result.stderr.str()


def _said_once_and_masked(result: pytest.RunResult, origin_and_dsn: str) -> None:
    """The run stopped at once, saying where the DSN came from and showing it masked, and nowhere its password."""
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = _output(result)
    assert PASSWORD not in text
    assert origin_and_dsn in text


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("case", CASES)
def test_no_output_shows_the_password_and_errors_name_the_masked_dsn_and_its_origin(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, production: Production, case: str, run: str
) -> None:
    dsn, masked = CASES[case](production)
    options, origin = RUNS[run]
    if origin == "--peewee-dsn":
        monkeypatch.delenv("PEEWEE_ASYNC_TESTING_DSN")
        options = ["--peewee-dsn", dsn, *options]
    else:
        monkeypatch.setenv("PEEWEE_ASYNC_TESTING_DSN", dsn)
    inner.makepyfile(USES_THE_DATABASE)
    _said_once_and_masked(inner.runpytest(*options), f"{ORIGINS[origin]} ({masked})")


def test_a_dsn_set_by_a_conftest_during_collection_is_named_so(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, production: Production
) -> None:
    monkeypatch.delenv("PEEWEE_ASYNC_TESTING_DSN")
    dsn, masked = CASES["wrong password"](production)
    inner.mkpydir("sub").joinpath("conftest.py").write_text(
        f"import os\n\nos.environ['PEEWEE_ASYNC_TESTING_DSN'] = {dsn!r}\n"
    )
    inner.path.joinpath("sub", "test_it.py").write_text(USES_THE_DATABASE)
    origin = "$PEEWEE_ASYNC_TESTING_DSN, set during collection (by a conftest.py or a module)"
    _said_once_and_masked(inner.runpytest("-l", "--tb=long"), f"{origin} ({masked})")


def test_a_run_with_the_password_and_the_host_only_in_the_query_works(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, production: Production
) -> None:
    dsn = f"postgresql://app@nowhere.invalid:{production.port}/postgres?host=127.0.0.1&password={PASSWORD}"
    monkeypatch.setenv("PEEWEE_ASYNC_TESTING_DSN", dsn)
    inner.makepyfile(USES_THE_DATABASE)
    result = inner.runpytest("-v")
    result.assert_outcomes(passed=1)
    assert PASSWORD not in _output(result)
    assert production.sent_to("test_app"), "the run did not make its database on the production stand-in"


def test_sslmode_require_fails_the_run_on_a_server_without_ssl(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, production: Production
) -> None:
    monkeypatch.setenv("PEEWEE_ASYNC_TESTING_DSN", production.dsn(sslmode="require"))
    inner.makepyfile(USES_THE_DATABASE)
    result = inner.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # said once, for the session
    result.stdout.fnmatch_lines(
        [
            "*Cannot connect to database postgres of the server of $PEEWEE_ASYNC_TESTING_DSN "
            f"(postgresql://app:***@127.0.0.1:{production.port}/postgres?sslmode=require): *"
            "server does not support SSL, but SSL was required",
            "*Check that it runs and that the DSN is right.*",
        ]
    )
    assert PASSWORD not in _output(result)


SHOWS_THE_SETTINGS = """
import pytest
from app.db import database

async def first_row(database, cursor):
    return await cursor.fetchone()

@pytest.mark.peewee_db
async def test_it():
    sql = "SELECT current_setting('search_path'), current_database()"
    assert await database.aio_execute_sql(sql, fetch_results=first_row) == ("peewee_dsn_check,public", "test_app")
"""

PSYCOPG_DB = APP_DB.replace("peewee_async.PostgresqlDatabase(", "peewee_async.Psycopg3Database(")


def test_options_reach_the_test_databases_connections_on_aiopg(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, production: Production
) -> None:
    monkeypatch.setenv("PEEWEE_ASYNC_TESTING_DSN", production.dsn(options="-c search_path=peewee_dsn_check,public"))
    inner.makepyfile(SHOWS_THE_SETTINGS)
    result = inner.runpytest()
    result.assert_outcomes(passed=1)
    assert PASSWORD not in _output(result)


def test_psycopg_3_refuses_what_its_pool_cannot_pass_on(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, production: Production
) -> None:
    inner.path.joinpath("app", "db.py").write_text(PSYCOPG_DB)
    monkeypatch.setenv("PEEWEE_ASYNC_TESTING_DSN", production.dsn(options="-c search_path=peewee_dsn_check,public"))
    inner.makepyfile(SHOWS_THE_SETTINGS)
    result = inner.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # said once, for the session
    result.stdout.fnmatch_lines(
        [
            "*$PEEWEE_ASYNC_TESTING_DSN (postgresql://app:***@127.0.0.1:*/postgres?options=*) sets options, which "
            "peewee_async.Psycopg3Database cannot pass on to its connections*",
        ]
    )
    assert PASSWORD not in _output(result)
    monkeypatch.setenv("PEEWEE_ASYNC_TESTING_DSN", production.dsn())  # the password alone it takes
    inner.makepyfile(USES_THE_DATABASE)
    inner.runpytest().assert_outcomes(passed=1)


def _refused(production: Production, database: str) -> bool:
    """Whether pg_hba.conf refuses role app on ``database`` now (the server reloads it when it gets to it)."""
    try:
        psycopg2.connect(dbname=database, host=production.host, port=production.port, user="app").close()
    except psycopg2.OperationalError as error:
        return "pg_hba.conf rejects" in str(error)
    return False


def _reload_until(production: Production, refused: bool) -> None:
    production.admin("SELECT pg_reload_conf()")
    for _ in range(10_000):
        if _refused(production, "test_app") == refused:
            return
    raise AssertionError("the production server never reloaded its pg_hba.conf")


def test_a_test_database_the_server_refuses_is_said_without_the_password(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, production: Production
) -> None:
    hba = production.log.parent / "data" / "pg_hba.conf"
    original = hba.read_text()
    hba.write_text("host test_app app 127.0.0.1/32 reject\n" + original)  # test_app only: postgres it may use
    _reload_until(production, refused=True)
    try:
        monkeypatch.setenv("PEEWEE_ASYNC_TESTING_DSN", production.dsn())
        inner.makepyfile(USES_THE_DATABASE)
        result = inner.runpytest()
    finally:
        hba.write_text(original)
        _reload_until(production, refused=False)
        production.admin("DROP DATABASE IF EXISTS test_app")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # said once, for the session
    result.stdout.fnmatch_lines(
        [
            "*Cannot connect to database test_app of the server of $PEEWEE_ASYNC_TESTING_DSN "
            f"(postgresql://app:***@127.0.0.1:{production.port}/postgres): *pg_hba.conf rejects connection*"
        ]
    )
    assert PASSWORD not in _output(result)
