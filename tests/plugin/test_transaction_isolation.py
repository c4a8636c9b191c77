"""Isolation by transaction: with autouse on, or for marked tests, each test runs in a transaction rolled
back at its end, fixtures and tear-downs included, whatever the event loop scopes and asyncio mode."""

from __future__ import annotations

import pytest

from peewee_async_testing import PostgresServer

from ..helpers import databases, needs_one_loop
from .project import COMMITTED_NOTE, CONFIGURED, ISOLATED_TESTS, make_ini
from .test_restore import RESTORED


def test_autouse_isolates_every_test_on_a_test_database(inner: pytest.Pytester, pg_server: PostgresServer) -> None:
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makepyfile(
        test_names="""
        from app.db import database

        def test_the_database_object_points_at_the_test_database():
            assert database.database == "test_app"
        """,
        test_isolated=ISOLATED_TESTS,
    )
    result = inner.runpytest()
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(
        [
            "peewee-async-testing: database app.db:database, autouse on",
            "*RuntimeError: boom*",
            f"peewee-async-testing: test database test_app on 127.0.0.1:{pg_server.port} (created, dropped)",
        ]
    )
    assert "test_app" not in databases(pg_server)


def test_fixture_data_and_fixture_tear_downs_are_isolated_too(inner: pytest.Pytester) -> None:
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makepyfile(
        """
        import pytest
        from app.models import Note

        @pytest.fixture
        async def note():
            note = await Note.aio_create(text="from a fixture")  # inside the test's transaction
            yield note
            await Note.aio_create(text="from a tear-down")  # after it: in one of its own, rolled back too

        async def test_uses_the_fixture(note):
            assert [n.text for n in await Note.select().aio_execute()] == ["from a fixture"]

        async def test_nothing_survived():
            assert await Note.select().aio_count() == 0
        """
    )
    inner.runpytest().assert_outcomes(passed=2)


@pytest.mark.parametrize("isolation", ["in_transaction", "clear_tables"])
def test_a_fixture_asked_for_before_the_isolation_is_isolated_too(inner: pytest.Pytester, isolation: str) -> None:
    """``def test(note, in_transaction)``: pytest would set up ``note`` first, its row outside the transaction
    (or before clear_tables looks): the isolation goes first among the function-scoped fixtures, as asked or not."""
    make_ini(inner, CONFIGURED)
    inner.makepyfile(
        f"""
        import pytest
        from app.models import Note

        @pytest.fixture
        async def note():
            return await Note.aio_create(text="from a fixture asked for first")

        async def test_uses_the_fixture(note, {isolation}):
            assert await Note.select().aio_count() == 1

        @pytest.mark.peewee_db
        async def test_nothing_survived():
            assert await Note.select().aio_count() == 0
        """
    )
    inner.runpytest().assert_outcomes(passed=2)


def test_without_autouse_only_marked_tests_are_isolated(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest
        from app.models import Note

        from peewee_async_testing import DatabaseAccessError

        async def test_an_unisolated_write_is_refused():
            with pytest.raises(DatabaseAccessError, match="not isolated"):
                await Note.aio_create(text="refused")

        async def test_asking_for_the_database_takes_it_as_it_is(peewee_database):
            await Note.aio_create(text="kept")

        @pytest.mark.peewee_db
        async def test_marked_writes():
            await Note.aio_create(text="rolled back")

        @pytest.mark.peewee_db
        async def test_the_marked_write_is_gone():
            assert [note.text for note in await Note.select().aio_execute()] == ["kept"]
        """
    )
    inner.runpytest().assert_outcomes(passed=4)


def test_the_ini_lets_app_code_open_transactions(inner: pytest.Pytester) -> None:
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true\npeewee_async_allow_transactions = true")
    inner.makepyfile(
        """
        import pytest
        from app.db import database
        from app.models import Note

        async def test_get_or_create():
            assert (await Note.aio_get_or_create(text="x"))[1]
            assert not (await Note.aio_get_or_create(text="x"))[1]

        async def test_undone():
            assert await Note.select().aio_count() == 0

        @pytest.mark.peewee_db(allow_transactions=False)
        async def test_the_marker_overrides_the_ini():
            with pytest.raises(ValueError):
                async with database.aio_atomic():
                    pass
        """
    )
    inner.runpytest().assert_outcomes(passed=3)


def test_a_test_transaction_is_over_for_other_connections_the_moment_the_test_ends(inner: pytest.Pytester) -> None:
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makepyfile(
        """
        from app.db import database
        from app.models import Note

        async def test_writes_a_unique_row():
            await Note.aio_create(text="only once")

        def test_another_connection_writes_it_without_waiting():  # its own connection: clear_tables
            with database.allow_sync():
                database.execute_sql("SET lock_timeout = '2s'")  # fails if the row's transaction were open
                Note.create(text="only once")
        """
    )
    inner.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_a_connection_killed_during_a_test_is_replaced_for_the_next(
    inner: pytest.Pytester, pg_server: PostgresServer
) -> None:
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makepyfile(
        f"""
        import psycopg2
        from peewee_async.databases import fetchall
        from app.db import database
        from app.models import Note

        async def test_loses_its_connection():
            await Note.aio_create(text="lost")
            [(pid,)] = await database.aio_execute_sql("SELECT pg_backend_pid()", fetch_results=fetchall)
            killer = psycopg2.connect({pg_server.dsn!r})
            killer.autocommit = True
            killer.cursor().execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
            killer.close()

        async def test_runs_on_a_fresh_one():
            assert await Note.select().aio_count() == 0
            await Note.aio_create(text="lost")
        """
    )
    inner.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_loop_scopes_can_be_mixed_in_one_run(inner: pytest.Pytester) -> None:
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true", loop="function")
    inner.makepyfile(
        test_function_loops=ISOLATED_TESTS.replace("raise RuntimeError", "pass  #"),
        test_module_loop="""
        import pytest
        from app.models import Note

        pytestmark = pytest.mark.asyncio(loop_scope="module")

        async def test_module_loop_one():
            await Note.aio_create(text="m")

        async def test_module_loop_two():
            assert await Note.select().aio_count() == 0
        """,
        test_session_loop="""
        import pytest
        from app.models import Note

        @pytest.mark.asyncio(loop_scope="session")
        async def test_session_loop():
            assert await Note.select().aio_count() == 0
            await Note.aio_create(text="s")
        """,
    )
    inner.runpytest().assert_outcomes(passed=7)


def test_strict_mode_works_too(inner: pytest.Pytester) -> None:
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true", mode="strict", loop="function")
    inner.makepyfile(
        """
        import pytest
        from app.models import Note

        @pytest.mark.asyncio
        async def test_one():
            await Note.aio_create(text="x")

        @pytest.mark.asyncio
        async def test_two():
            assert await Note.select().aio_count() == 0
        """
    )
    inner.runpytest().assert_outcomes(passed=2)


def test_a_case_the_test_opens_nests_in_its_transaction(inner: pytest.Pytester) -> None:
    """The cases open in a task are a context variable: the test's task must see in_transaction's."""
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makepyfile(
        """
        from peewee_async_testing import TransactionTestCase
        from app.db import database
        from app.models import Note

        async def test_nests(in_transaction):
            await Note.aio_create(text="the test's")
            async with TransactionTestCase(database) as inner:
                assert inner.nested
                assert inner.connection is in_transaction.connection
                assert await Note.select().aio_count() == 1
                await Note.aio_create(text="the inner block's")
            assert [note.text for note in await Note.select().aio_execute()] == ["the test's"]
        """
    )
    # In a process of its own: in-process runs re-import some of the package's modules, and a case class from an
    # earlier run's import would look in another module's registry.
    inner.runpytest_subprocess().assert_outcomes(passed=1)


def test_between_test_transactions_the_database_is_its_own(inner: pytest.Pytester) -> None:
    # The stand-ins stay on the database object from test to test (no test pays for patching it): outside a test
    # transaction they hand every call to the database's own methods, so a wider fixture set up after a test
    # commits its rows, and a sync query runs.
    make_ini(inner, CONFIGURED)
    inner.makepyfile(
        COMMITTED_NOTE
        + """
@pytest.mark.peewee_db
async def test_first():
    await Note.aio_create(text="rolled back")

@pytest.mark.peewee_db(allow_transactions=True)
async def test_second(committed):
    assert [note.text for note in await Note.select().aio_execute()] == ["committed"]
    async with database.aio_atomic():
        await Note.aio_create(text="on a savepoint")

def test_a_sync_query_after_them(clear_tables):
    with database.allow_sync():
        assert [note.text for note in Note.select()] == ["committed"]
"""
    )
    inner.runpytest("-p", "no:randomly").assert_outcomes(passed=3)


@needs_one_loop
def test_blocks_of_every_kind_keep_their_own_rules_where_the_stand_ins_are_kept(inner: pytest.Pytester) -> None:
    # The stand-ins kept on the database for the session serve every block opened meanwhile: a case the test opens
    # with the other allow_transactions (its rule while open, the test's back after it), an AioDatabaseTestCase
    # class run after in_transaction tests, a module whose peewee_database is its own; and after the session, the
    # database's attributes are the identical ones again.
    make_ini(inner, CONFIGURED)
    inner.makeconftest(RESTORED)
    inner.makepyfile(
        test_1_nested="""
        import pytest
        from peewee_async_testing import TransactionTestCase
        from app.db import database
        from app.models import Note

        async def savepoint(text):
            try:
                async with database.aio_atomic():
                    await Note.aio_create(text=text)
            except ValueError:
                return "refused"
            return "savepoint"

        @pytest.mark.peewee_db
        async def test_an_inner_case_allows():
            async with TransactionTestCase(database, allow_transactions=True):
                assert await savepoint("inner") == "savepoint"
            assert await savepoint("outer") == "refused"
            assert await Note.select().aio_count() == 0

        @pytest.mark.peewee_db(allow_transactions=True)
        async def test_an_inner_case_refuses():
            async with TransactionTestCase(database):
                assert await savepoint("inner") == "refused"
            assert await savepoint("outer") == "savepoint"
            assert await Note.select().aio_count() == 1
        """,
        test_2_unittest="""
        from peewee_async_testing import AioDatabaseTestCase
        from app.db import database
        from app.models import Note

        class TestAfterThem(AioDatabaseTestCase):
            database = database

            async def test_one(self):
                assert await Note.select().aio_count() == 0
                await Note.aio_create(text="unittest")
                with self.assertRaises(ValueError):
                    async with database.aio_atomic():
                        pass

            async def test_two(self):
                assert await Note.select().aio_count() == 0
        """,
        test_3_own_database="""
        import pytest
        from app.db import database
        from app.models import Note

        @pytest.fixture(scope="module")
        def peewee_database():
            return database

        @pytest.mark.peewee_db
        async def test_writes():
            await Note.aio_create(text="module")

        @pytest.mark.peewee_db
        async def test_sees_nothing():
            assert await Note.select().aio_count() == 0
        """,
    )
    inner.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=6)
    assert inner.path.joinpath("changed").read_text() == "[]"
