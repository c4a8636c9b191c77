"""The connection the plugin keeps from test to test: it serves the next test as good as new, and faults on it
(a killed backend, a failed reconnect, a pool of one connection) cost the test that met them, never the next."""

from __future__ import annotations

import pytest

from peewee_async_testing import PostgresServer

from .project import APP_DB, COMMITTED_NOTE, CONFIGURED, make_ini

#: Generous: the inner runs take seconds; a regression hangs.
BOUND = 120.0

APPS = {
    "aiopg": APP_DB,
    "psycopg": APP_DB.replace("peewee_async.PostgresqlDatabase(", "peewee_async.Psycopg3Database("),
}
#: psycopg's pool waits 30 s for a connection by default: a refused reconnect fails sooner.
ONE_CONNECTION = {"aiopg": '{"minsize": 1, "maxsize": 1}', "psycopg": '{"min_size": 1, "max_size": 1, "timeout": 5}'}


@pytest.fixture(params=sorted(APPS))
def driver(request: pytest.FixtureRequest, inner: pytest.Pytester) -> str:
    """The inner app's driver (aiopg, psycopg 3); every test in a transaction, on a session loop."""
    inner.path.joinpath("app", "db.py").write_text(APPS[request.param])
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    return str(request.param)


def one_connection(inner: pytest.Pytester, driver: str) -> None:
    """The inner app's pool holds one connection at most."""
    app = APPS[driver].replace('user="postgres"', f'user="postgres", pool_params={ONE_CONNECTION[driver]}')
    inner.path.joinpath("app", "db.py").write_text(app)


def admin_code(server: PostgresServer) -> str:
    """An ``admin(sql)`` for inner tests: SQL as the superuser, outside any transaction, on ``postgres``."""
    return f"""
import psycopg2

def admin(sql, params=()):
    connection = psycopg2.connect({server.dsn!r})
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()
"""


def test_a_session_advisory_lock_is_released_for_the_next_test(
    inner: pytest.Pytester, driver: str, pg_server: PostgresServer
) -> None:
    inner.makepyfile(
        admin_code(pg_server)
        + """
from peewee_async.databases import fetchall
from app.db import database

async def test_takes_a_session_lock():
    await database.aio_execute_sql("SELECT pg_advisory_lock(4242)")

def test_another_connection_gets_it():
    connection = psycopg2.connect(dbname=database.database, host=database.connect_params["host"],
                                  port=database.connect_params["port"], user="postgres")
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '20s'")  # waits for the lock, and fails if it is never released
            cursor.execute("SELECT pg_advisory_lock(4242)")
    finally:
        connection.close()
"""
    )
    inner.runpytest_subprocess("-p", "no:randomly", timeout=BOUND).assert_outcomes(passed=2)


def test_a_prepared_statement_is_gone_for_the_next_test(inner: pytest.Pytester, driver: str) -> None:
    inner.makepyfile(
        """
from app.db import database

async def test_one():
    await database.aio_execute_sql("PREPARE pwat_stmt AS SELECT 1")

async def test_two_prepares_the_same_name():
    await database.aio_execute_sql("PREPARE pwat_stmt AS SELECT 1")
"""
    )
    inner.runpytest_subprocess("-p", "no:randomly", timeout=BOUND).assert_outcomes(passed=2)


def test_clear_tests_run_after_transaction_tests_on_a_pool_of_one_connection(
    inner: pytest.Pytester, driver: str
) -> None:
    one_connection(inner, driver)
    inner.makepyfile(
        """
import pytest
from app.models import Note

async def test_in_a_transaction():
    await Note.aio_create(text="rolled back")

@pytest.mark.peewee_db(isolation="clear")
async def test_clear_takes_the_only_connection():
    assert await Note.select().aio_count() == 0
    await Note.aio_create(text="cleared")

async def test_in_a_transaction_again():
    assert await Note.select().aio_count() == 0
    await Note.aio_create(text="cleared")
"""
    )
    inner.runpytest_subprocess("-p", "no:randomly", timeout=BOUND).assert_outcomes(passed=3)


def test_a_killed_connection_is_replaced_on_a_pool_of_one_connection(
    inner: pytest.Pytester, driver: str, pg_server: PostgresServer
) -> None:
    one_connection(inner, driver)
    inner.makepyfile(
        admin_code(pg_server)
        + """
from peewee_async.databases import fetchall
from app.db import database
from app.models import Note

async def pid():
    [(pid,)] = await database.aio_execute_sql("SELECT pg_backend_pid()", fetch_results=fetchall)
    return pid

async def test_loses_its_connection_and_queries():
    admin("SELECT pg_terminate_backend(%s, 5000)", (await pid(),))
    await Note.aio_create(text="lost")

async def test_loses_its_connection_after_its_last_query():
    admin("SELECT pg_terminate_backend(%s, 5000)", (await pid(),))

async def test_runs_on_a_fresh_one():
    assert await Note.select().aio_count() == 0
    await Note.aio_create(text="lost")
"""
    )
    result = inner.runpytest_subprocess("-p", "no:randomly", timeout=BOUND)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*OperationalError*terminating connection due to administrator command*"])
    result.stdout.no_fnmatch_line("*PoolTimeout*")


def test_a_failed_reconnect_costs_only_the_test_that_met_it(
    inner: pytest.Pytester, driver: str, pg_server: PostgresServer
) -> None:
    one_connection(inner, driver)  # so that no connection opened before is left to serve
    inner.makepyfile(
        admin_code(pg_server)
        + """
import asyncio

import peewee
from peewee_async.databases import fetchall
from app.db import database
from app.models import Note

async def test_opens_the_kept_connection():
    await Note.aio_create(text="one")

async def test_the_server_refuses_new_connections_and_drops_this_one():
    [(pid,)] = await database.aio_execute_sql("SELECT pg_backend_pid()", fetch_results=fetchall)
    admin(f'ALTER DATABASE "{database.database}" WITH ALLOW_CONNECTIONS false')
    admin("SELECT pg_terminate_backend(%s, 5000)", (pid,))

async def test_cannot_reconnect():
    await Note.aio_create(text="three")

async def test_the_server_is_back():
    admin(f'ALTER DATABASE "{database.database}" WITH ALLOW_CONNECTIONS true')
    # psycopg's pool retries with a growing back-off of its own: wait for it (generously), not for a time
    deadline = asyncio.get_running_loop().time() + 120
    while True:
        try:
            assert await Note.select().aio_count() == 0
            break
        except peewee.OperationalError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)
    await Note.aio_create(text="one")

async def test_and_stays_back():
    assert await Note.select().aio_count() == 0
    await Note.aio_create(text="one")
"""
    )
    result = inner.runpytest_subprocess("-p", "no:randomly", "-rA", timeout=BOUND)
    # Which test meets the refused reconnect depends on the driver: aiopg reads the ROLLBACK's reply in the next test.
    result.stdout.fnmatch_lines(["PASSED *::test_the_server_is_back", "PASSED *::test_and_stays_back"])
    result.stdout.fnmatch_lines(["FAILED *::test_cannot_reconnect*"])
    result.stdout.no_fnmatch_line("*AssertionError*")
    assert result.parseoutcomes().get("errors", 0) == 0


def test_shared_data_after_transaction_tests_on_a_pool_of_one_connection(inner: pytest.Pytester, driver: str) -> None:
    one_connection(inner, driver)
    inner.makepyfile(
        test_a_first="""
from app.models import Note

async def test_keeps_the_connection():
    await Note.aio_create(text="rolled back")
""",
        test_b_shared="""
import pytest
from peewee_async.databases import fetchone
from app.db import database
from app.models import Note

@pytest.fixture(scope="module")
async def shared_note(peewee_module_transaction):
    return await Note.aio_create(text="shared")

async def test_sees_the_shared_row(shared_note):
    assert await Note.select().aio_count() == 1
    await database.aio_execute_sql("SELECT pg_advisory_lock(4242)")
    await database.aio_execute_sql("PREPARE pwat_stmt AS SELECT 1")

async def test_the_next_test_on_the_shared_connection_starts_clean(shared_note):
    assert await Note.select().aio_count() == 1
    await database.aio_execute_sql("PREPARE pwat_stmt AS SELECT 1")
    locks = await database.aio_execute_sql(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
        fetch_results=fetchone,
    )
    assert locks[0] == 0
""",
        test_c_after="""
from app.models import Note

async def test_nothing_is_left():
    assert await Note.select().aio_count() == 0
""",
    )
    inner.runpytest_subprocess("-p", "no:randomly", timeout=BOUND).assert_outcomes(passed=4)


def test_a_wider_fixture_after_transaction_tests_on_a_pool_of_one_connection(
    inner: pytest.Pytester, driver: str
) -> None:
    # The connection kept from test to test is out of the pool: a wider fixture set up after a test transaction
    # takes its connection from the pool itself (outside every block), and a pool of one has no other, so it waits
    # for the pool's timeout. (The shared-data fixtures give the kept connection back first: a wider fixture of the
    # user's own should get the same.)
    one_connection(inner, driver)
    if driver == "aiopg":  # its pool waits 60 s for a connection by default
        app = inner.path.joinpath("app", "db.py")
        app.write_text(app.read_text().replace('"maxsize": 1}', '"maxsize": 1, "timeout": 5}'))
    inner.makepyfile(
        COMMITTED_NOTE
        + """
async def test_keeps_the_connection():
    await Note.aio_create(text="rolled back")

async def test_a_wider_fixture_commits(committed):
    assert [note.text for note in await Note.select().aio_execute()] == ["committed"]
"""
    )
    inner.runpytest_subprocess("-p", "no:randomly", timeout=BOUND).assert_outcomes(passed=2)
