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
