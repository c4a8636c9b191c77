"""The ``peewee_db`` marker: its choices per test, class and module, its options, and its mistakes named."""

from __future__ import annotations

import pytest

from .project import CONFIGURED, make_ini


@pytest.mark.parametrize("loop", ["function", "session"])
def test_marker_choices_per_test_class_and_module(inner: pytest.Pytester, loop: str) -> None:
    make_ini(inner, loop=loop)
    inner.makepyfile(
        test_clear="""
        import pytest
        from app.db import database
        from app.models import Note

        pytestmark = pytest.mark.peewee_db(isolation="clear")

        def sync_texts():
            with database.allow_sync():
                return [note.text for note in Note.select()]

        async def test_committed_rows_are_visible_to_sync_code(in_transaction):
            assert in_transaction is None
            await Note.aio_create(text="committed")
            assert sync_texts() == ["committed"]

        def test_sync_tests_are_cleared_too():
            assert sync_texts() == []
            with database.allow_sync():
                Note.create(text="sync")

        def test_and_cleared_after():
            assert sync_texts() == []
        """,
        test_transaction="""
        import pytest
        from app.models import Note

        @pytest.mark.peewee_db(isolation="transaction")
        class TestInTransactions:
            async def test_one(self, in_transaction):
                assert in_transaction.connection is None  # opened by the first query
                await Note.aio_create(text="x")
                assert in_transaction.connection is not None

            async def test_two(self):
                assert await Note.select().aio_count() == 0
                await Note.aio_create(text="x")
        """,
    )
    inner.runpytest().assert_outcomes(passed=5)


def test_marker_options_reach_the_transaction(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import peewee
        import pytest
        from app.db import database
        from app.models import Note

        @pytest.mark.peewee_db(autosavepoint=True, reset_sequences=True)
        async def test_goes_on_after_an_integrity_error():
            note = await Note.aio_create(text="x")
            assert note.id == 1
            with pytest.raises(peewee.IntegrityError):
                await Note.aio_create(text="x")
            assert await Note.select().aio_count() == 1

        @pytest.mark.peewee_db(reset_sequences=True)
        async def test_the_sequence_was_reset():
            assert (await Note.aio_create(text="y")).id == 1

        @pytest.mark.peewee_db(allow_transactions=True)
        async def test_app_transactions():
            async with database.aio_transaction():
                await Note.aio_create(text="z")

        @pytest.mark.peewee_db
        async def test_refused_by_default():
            with pytest.raises(ValueError, match="allow_transactions=True"):
                async with database.aio_transaction():
                    pass
        """
    )
    inner.runpytest().assert_outcomes(passed=4)


def test_marker_mistakes_name_the_valid_choices(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest

        @pytest.mark.peewee_db(isolation="truncate")
        async def test_wrong_isolation():
            pass

        @pytest.mark.peewee_db(isolaton="clear")
        async def test_misspelt_option():
            pass

        @pytest.mark.peewee_db(isolation="transaction")
        def test_sync_in_a_transaction():
            pass

        @pytest.mark.peewee_db(autosavepoint="yes")
        async def test_not_a_bool():
            pass

        @pytest.mark.peewee_db(isolation="clear", reset_sequence=True)
        async def test_misspelt_option_of_clear():
            pass
        """
    )
    result = inner.runpytest()
    result.assert_outcomes(errors=5)
    result.stdout.fnmatch_lines_random(
        [
            "*isolation='truncate' is not one of: 'transaction', 'clear'*",
            "*unknown option(s) isolaton; valid: isolation*",
            "*unknown option(s) reset_sequence; valid: isolation*",
            "*needs an async test*Use isolation='clear'*",
            "*autosavepoint must be True or False*",
        ]
    )


def test_markers_merge_key_by_key_test_over_class_over_module_over_ini(inner: pytest.Pytester) -> None:
    make_ini(inner, CONFIGURED + "peewee_async_autosavepoint = true")
    inner.makepyfile(
        """
        import peewee
        import pytest
        from app.db import database
        from app.models import Note

        pytestmark = pytest.mark.peewee_db(allow_transactions=True)

        async def test_moves_the_sequence():
            await Note.aio_create(text="a")

        @pytest.mark.peewee_db(reset_sequences=True)
        async def test_the_modules_option_is_kept():
            async with database.aio_atomic():
                assert (await Note.aio_create(text="x")).id == 1
            with pytest.raises(peewee.IntegrityError):  # the ini file's autosavepoint: the test goes on
                await Note.aio_create(text="x")
            assert await Note.select().aio_count() == 1

        @pytest.mark.peewee_db(allow_transactions=False)
        class TestRefused:
            async def test_the_class_wins_over_the_module(self):
                with pytest.raises(ValueError, match="peewee_async_allow_transactions = true"):
                    async with database.aio_atomic():
                        pass

            @pytest.mark.peewee_db(allow_transactions=True)
            async def test_the_test_wins_over_the_class(self):
                async with database.aio_atomic():
                    await Note.aio_create(text="y")
        """
    )
    inner.runpytest("-p", "no:randomly").assert_outcomes(passed=4)


def test_isolation_by_position_and_by_the_ini_file(inner: pytest.Pytester) -> None:
    make_ini(inner, CONFIGURED + "peewee_async_allow_transactions = true")
    inner.makepyfile(
        """
        import pytest
        from app.db import database
        from app.models import Note

        def texts():
            with database.allow_sync():
                return [note.text for note in Note.select()]

        @pytest.mark.peewee_db("clear")
        async def test_positional_clear(in_transaction):
            assert in_transaction is None
            await Note.aio_create(text="committed")
            assert texts() == ["committed"]

        @pytest.mark.peewee_db("clear")
        def test_sync_and_cleared():
            assert texts() == []

        @pytest.mark.peewee_db
        async def test_the_ini_allows_transactions():
            async with database.aio_transaction():
                await Note.aio_create(text="x")
        """
    )
    inner.runpytest("-p", "no:randomly").assert_outcomes(passed=3)


def test_mistakes_of_any_marker_and_of_the_ini_file_are_refused(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.peewee_db(allow_transactions="no")

        @pytest.mark.peewee_db(reset_sequences=True)
        async def test_module_marker_not_a_bool():
            pass
        """,
        test_positional="""
        import pytest

        @pytest.mark.peewee_db(True)
        async def test_a_bool_for_isolation():
            pass

        @pytest.mark.peewee_db("clear", True)
        async def test_too_many():
            pass
        """,
    )
    result = inner.runpytest()
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines_random(
        [
            "*allow_transactions must be True or False*",
            "*isolation=True is not one of: 'transaction', 'clear'*",
            "*too many positional arguments; it takes peewee_db(isolation=*",
        ]
    )
    make_ini(inner, CONFIGURED + "peewee_async_reset_sequences = maybe")
    result = inner.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*invalid truth value 'maybe'*peewee_async_reset_sequences*true or false*"])


def test_a_marker_added_after_collection_reaches_the_transaction(inner: pytest.Pytester) -> None:
    # How a test is isolated is worked out at collection and kept; a marker a conftest adds later (a trylast
    # collection hook, a set-up hook) or a fixture applies to the module must still reach its options.
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makeconftest(
        """
        import pytest

        @pytest.hookimpl(trylast=True)
        def pytest_collection_modifyitems(items):
            for item in items:
                if "late_collection" in item.name:
                    item.add_marker(pytest.mark.peewee_db(allow_transactions=True))

        def pytest_runtest_setup(item):
            if "late_setup" in item.name:
                item.add_marker(pytest.mark.peewee_db(allow_transactions=True))
        """
    )
    inner.makepyfile(
        """
        from app.db import database
        from app.models import Note

        async def test_late_collection():
            async with database.aio_atomic():
                await Note.aio_create(text="on a savepoint")

        async def test_late_setup():
            async with database.aio_atomic():
                await Note.aio_create(text="on a savepoint")
        """
    )
    inner.runpytest().assert_outcomes(passed=2)


def test_each_case_of_a_parametrized_test_keeps_its_own_marks(inner: pytest.Pytester) -> None:
    # pytest gives a parametrized test's cases one fixture closure: the isolation the first case puts in it must
    # not become the others' (a case marked for a transaction must get one, not the clear of the case before).
    make_ini(inner, CONFIGURED)
    inner.makepyfile(
        """
        import pytest
        from app.db import database
        from app.models import Note

        @pytest.mark.parametrize(
            "isolation",
            [
                pytest.param("clear", marks=pytest.mark.peewee_db(isolation="clear")),
                pytest.param("transaction", marks=pytest.mark.peewee_db(isolation="transaction")),
            ],
        )
        async def test_case(isolation):
            await Note.aio_create(text=isolation)
            with database.allow_sync():
                assert Note.select().count() == 1  # a sync query: refused inside a test transaction
        """
    )
    result = inner.runpytest("-p", "no:randomly", "-rf")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*TransactionError: A synchronous query*", "FAILED *::test_case[[]transaction[]]*"])
