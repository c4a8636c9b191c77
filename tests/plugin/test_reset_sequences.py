"""``reset_sequences`` in pytest: the same ids whatever ran before, next to shared data, and its ini switch."""

from __future__ import annotations

import pytest

from .project import CONFIGURED, make_ini

#: Tests that move the sequences without resetting them, run before the ones that check ids.
MOVERS = """
from app.models import Note


async def test_moves_the_sequence(in_transaction):
    await Note.aio_create(text="a")
    await Note.aio_create(text="b")


def test_moves_it_committed_and_cleared(clear_tables):
    from app.db import database

    with database.allow_sync():
        Note.create(text="committed")
"""


@pytest.mark.parametrize("movers_first", [False, True], ids=["alone", "after-others"])
def test_the_first_id_is_the_same_whatever_ran_before(inner: pytest.Pytester, movers_first: bool) -> None:
    files = {"test_b_ids": _IDS}
    if movers_first:
        files["test_a_movers"] = MOVERS
    inner.makepyfile(**files)
    inner.runpytest("-p", "no:randomly").assert_outcomes(passed=3 + 2 * movers_first)


_IDS = """
import pytest
from app.models import Comment, Note


@pytest.mark.peewee_db(reset_sequences=True)
async def test_first_id_is_one():
    assert (await Note.aio_create(text="x")).id == 1
    assert (await Note.aio_create(text="y")).id == 2


@pytest.fixture(scope="class")
async def shared(peewee_class_transaction):
    return [await Note.aio_create(text="shared 1"), await Note.aio_create(text="shared 2")]


@pytest.mark.peewee_db(reset_sequences=True)
class TestNextToSharedData:
    async def test_ids_go_on_from_the_shared_rows(self, shared):
        assert (await Note.aio_create(text="mine")).id == max(note.id for note in shared) + 1
        assert (await Comment.aio_create(note=shared[0])).id == 1

    async def test_and_again(self, shared):
        assert (await Note.aio_create(text="mine")).id == max(note.id for note in shared) + 1
"""


def test_shared_data_made_with_reset_sequences_gets_the_same_ids(inner: pytest.Pytester) -> None:
    """The class's own transaction resets too (the class's marker reaches it), so its rows' ids repeat."""
    inner.makepyfile(
        test_a_movers=MOVERS,
        test_b_shared="""
        import pytest
        from app.models import Note


        @pytest.fixture(scope="class")
        async def shared(peewee_class_transaction):
            return await Note.aio_create(text="shared")


        @pytest.mark.peewee_db(reset_sequences=True)
        class TestShared:
            async def test_shared_row_is_one(self, shared):
                assert shared.id == 1
                assert (await Note.aio_create(text="mine")).id == 2
        """,
    )
    inner.runpytest("-p", "no:randomly").assert_outcomes(passed=3)


def test_a_test_that_does_not_reset_sees_what_it_would_have_seen(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest
        from app.models import Note


        pytestmark = pytest.mark.peewee_db


        async def test_one():
            assert (await Note.aio_create(text="a")).id == 1


        @pytest.mark.peewee_db(reset_sequences=True)
        async def test_resets():
            assert (await Note.aio_create(text="b")).id == 1
            assert (await Note.aio_create(text="c")).id == 2
            assert (await Note.aio_create(text="d")).id == 3


        async def test_two():
            assert (await Note.aio_create(text="e")).id == 2
        """
    )
    inner.runpytest("-p", "no:randomly").assert_outcomes(passed=3)


def test_the_ini_switch_resets_every_test_and_a_marker_turns_it_off(inner: pytest.Pytester) -> None:
    make_ini(inner, CONFIGURED + "peewee_async_reset_sequences = true\npeewee_async_autouse = true")
    inner.makepyfile(
        """
        import pytest
        from app.models import Note


        async def test_one():
            assert (await Note.aio_create(text="a")).id == 1


        async def test_again():
            assert (await Note.aio_create(text="a")).id == 1


        @pytest.mark.peewee_db(reset_sequences=False)
        async def test_off():
            assert (await Note.aio_create(text="a")).id == 1
            assert (await Note.aio_create(text="b")).id == 2


        async def test_after_one_that_did_not_reset():
            assert (await Note.aio_create(text="a")).id == 1
        """
    )
    inner.runpytest("-p", "no:randomly").assert_outcomes(passed=4)
