"""Isolation by clearing (``isolation="clear"``): the rows are committed, and the tables the test wrote to
are emptied after it."""

from __future__ import annotations

import pytest


def test_clear_tables_empties_only_the_tables_the_test_wrote_to(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest
        from app.db import database
        from app.models import Comment, Note

        @pytest.fixture(scope="module")
        async def seed(peewee_database):
            note = await Note.aio_create(text="seed")  # committed: no transaction around it
            yield note
            await Note.delete().aio_execute()

        @pytest.mark.peewee_db(isolation="clear")
        async def test_writes_comments(seed):
            await Comment.aio_create(note=seed)

        @pytest.mark.peewee_db(isolation="clear")
        def test_the_comments_are_gone_the_untouched_notes_are_not(seed):
            with database.allow_sync():
                assert Comment.select().count() == 0
                assert [note.text for note in Note.select()] == ["seed"]
        """
    )
    inner.runpytest().assert_outcomes(passed=2)


def test_cleared_ids_go_on_growing_unless_sequences_are_reset(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest
        from app.db import database
        from app.models import Note

        pytestmark = pytest.mark.peewee_db(isolation="clear")

        async def test_first():
            assert (await Note.aio_create(text="a")).id == 1

        async def test_ids_go_on_as_in_a_transaction():
            assert (await Note.aio_create(text="b")).id == 2

        @pytest.mark.peewee_db(isolation="clear", reset_sequences=True)
        def test_restarts_after_itself():
            with database.allow_sync():
                assert Note.create(text="c").id == 3

        async def test_restarted():
            assert (await Note.aio_create(text="d")).id == 1
        """
    )
    inner.runpytest("-p", "no:randomly").assert_outcomes(passed=4)


def test_clear_tables_empties_what_any_path_wrote(inner: pytest.Pytester) -> None:
    """A function, EXPLAIN ANALYZE, a trigger, raw cursors (async and sync), another connection: each test
    writes one way, the next finds every table empty."""
    inner.makepyfile(
        """
        import psycopg2
        import pytest
        from app.db import database
        from app.models import Comment, Note

        pytestmark = pytest.mark.peewee_db(isolation="clear")
        INSERT = "INSERT INTO note (text) VALUES ('{}')"

        @pytest.fixture(scope="module", autouse=True)
        async def objects(peewee_database):
            await database.aio_execute_sql(
                "CREATE FUNCTION add_note(t text) RETURNS integer LANGUAGE sql"
                " AS $$ INSERT INTO note (text) VALUES (t) RETURNING id $$"
            )
            await database.aio_execute_sql(
                "CREATE FUNCTION comment_note() RETURNS trigger LANGUAGE plpgsql"
                " AS $$ BEGIN INSERT INTO comment (note_id) VALUES (NEW.id); RETURN NEW; END $$"
            )
            await database.aio_execute_sql(
                "CREATE TRIGGER comment_note AFTER INSERT ON note FOR EACH ROW EXECUTE FUNCTION comment_note()"
            )

        async def counts():
            return [await Note.select().aio_count(), await Comment.select().aio_count()]

        async def test_a_function():
            await database.aio_execute_sql("SELECT add_note('function')")

        async def test_after_a_function():
            assert await counts() == [0, 0]

        async def test_explain_analyze():
            await database.aio_execute_sql("EXPLAIN ANALYZE " + INSERT.format("explain"))

        async def test_after_explain_analyze():
            assert await counts() == [0, 0]

        async def test_a_trigger():
            await Note.aio_create(text="trigger")

        async def test_after_a_trigger():
            assert await counts() == [0, 0]

        async def test_a_raw_cursor_of_a_pool_connection():
            async with database.aio_connection() as connection:
                async with connection.cursor() as cursor:
                    await cursor.execute(INSERT.format("pool"))

        async def test_after_a_raw_cursor_of_a_pool_connection():
            assert await counts() == [0, 0]

        def test_a_raw_cursor_of_the_sync_connection():
            with database.allow_sync():
                database.cursor().execute(INSERT.format("sync"))

        async def test_after_a_raw_cursor_of_the_sync_connection():
            assert await counts() == [0, 0]

        def test_another_connection():
            params = database.connect_params
            connection = psycopg2.connect(dbname=database.database, host=params["host"], port=params["port"],
                                          user=params["user"])
            with connection, connection.cursor() as cursor:
                cursor.execute(INSERT.format("another"))
            connection.close()

        async def test_after_another_connection():
            assert await counts() == [0, 0]
        """
    )
    inner.runpytest("-p", "no:randomly").assert_outcomes(passed=12)


def test_a_clear_test_starts_from_the_mark_the_last_clear_carried(inner: pytest.Pytester) -> None:
    """No round trip at the start of a clear test that follows another (tests in between too): the last clear's
    snapshot is its mark; what the tests in between committed is emptied with what it wrote."""
    inner.makeconftest(
        """
        import logging
        import pytest

        SENT = []

        class Collect(logging.Handler):
            def emit(self, record):
                if isinstance(record.msg, tuple):
                    SENT.append(record.msg[0])

        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_setup(item):
            handler, logger = Collect(), logging.getLogger("peewee")
            logger.setLevel(logging.DEBUG)
            logger.addHandler(handler)
            SENT.clear()
            try:
                return (yield)
            finally:
                logger.removeHandler(handler)
                item.user_properties.append(("sent", list(SENT)))
        """
    )
    inner.makepyfile(
        """
        import pytest
        from app.db import database
        from app.models import Comment, Note

        pytestmark = pytest.mark.peewee_db(isolation="clear")

        async def test_first():
            await Note.aio_create(text="first")

        @pytest.mark.peewee_db(isolation="transaction")
        async def test_in_between():
            await Note.aio_create(text="rolled back")

        async def test_second(request):
            sent = dict(request.node.user_properties)["sent"]
            assert not [sql for sql in sent if "txid_current_snapshot" in sql], sent
            assert await Note.select().aio_count() == 0
            note = await Note.aio_create(text="second")
            async with database.aio_connection() as connection:  # a raw cursor: only the server knows
                async with connection.cursor() as cursor:
                    await cursor.execute(f"INSERT INTO comment (note_id) VALUES ({note.id})")

        def test_after():
            with database.allow_sync():
                assert [Note.select().count(), Comment.select().count()] == [0, 0]
        """
    )
    inner.runpytest("-p", "no:randomly").assert_outcomes(passed=4)


@pytest.mark.parametrize("how", ["async", "sync"])
def test_rows_a_wider_fixture_made_between_clear_tests_survive_the_carried_mark(
    inner: pytest.Pytester, how: str
) -> None:
    """A fixture of wider scope set up between two clear tests makes the second take its own mark, so its rows
    (written before the test began) are left alone."""
    seed = (
        """
        @pytest.fixture(scope="module")
        async def seed(peewee_database):
            note = await Note.aio_create(text="seed")
            yield note
            await Note.delete().aio_execute()
        """
        if how == "async"
        else """
        @pytest.fixture(scope="module")
        def seed(peewee_database):
            with database.allow_sync():
                note = Note.create(text="seed")
            yield note
            with database.allow_sync():
                Note.delete().execute()
        """
    )
    inner.makepyfile(
        test_1_first="""
        import pytest
        from app.models import Note

        @pytest.mark.peewee_db(isolation="clear")
        async def test_first():
            await Note.aio_create(text="first")
        """,
        test_2_seeded=f"""
        import pytest
        from app.db import database
        from app.models import Comment, Note
        {seed}
        @pytest.mark.peewee_db(isolation="clear")
        async def test_writes_comments(seed):
            await Comment.aio_create(note=seed)

        @pytest.mark.peewee_db(isolation="clear")
        def test_the_seed_is_kept(seed):
            with database.allow_sync():
                assert Comment.select().count() == 0
                assert [note.text for note in Note.select()] == ["seed"]
        """,
    )
    inner.runpytest("-p", "no:randomly").assert_outcomes(passed=3)


def test_a_clear_empties_the_tables_where_the_models_are_now(inner: pytest.Pytester) -> None:
    # The clear's statements are made once per set of models: a model moved to another schema since (an app with a
    # schema per tenant, switched by a module's fixture) must be emptied where it is now, not where it was.
    inner.makeconftest(
        """
        import pytest
        from app.db import database

        @pytest.fixture(scope="session", autouse=True)
        def tenant_schema(peewee_database):
            with database.allow_sync():
                database.execute_sql("CREATE SCHEMA tenant")
                database.execute_sql("CREATE TABLE tenant.note (id serial PRIMARY KEY, text varchar(255) UNIQUE)")
        """
    )
    inner.makepyfile(
        test_1_public="""
        import pytest
        from app.models import Note

        pytestmark = pytest.mark.peewee_db(isolation="clear")

        async def test_writes_in_public():
            await Note.aio_create(text="public")

        async def test_public_was_emptied():
            assert await Note.select().aio_count() == 0
        """,
        test_2_tenant="""
        import pytest
        from peewee_async.databases import fetchall
        from app.db import database
        from app.models import Note

        pytestmark = pytest.mark.peewee_db(isolation="clear")

        @pytest.fixture(scope="module", autouse=True)
        def in_tenant():
            Note._meta.schema = "tenant"
            yield
            Note._meta.schema = None

        async def tenant_notes():
            return await database.aio_execute_sql("SELECT text FROM tenant.note", fetch_results=fetchall)

        async def test_writes_in_the_tenant():
            await Note.aio_create(text="tenant")
            assert [tuple(row) for row in await tenant_notes()] == [("tenant",)]

        async def test_the_tenant_was_emptied():
            assert await tenant_notes() == []
        """,
    )
    inner.runpytest("-p", "no:randomly").assert_outcomes(passed=4)
