"""Data a module or a class of tests shares: ``peewee_module_transaction`` and ``peewee_class_transaction``."""

from __future__ import annotations

import pytest

from .project import CONFIGURED, make_ini

SHARED = """
import pytest
from app.models import Comment, Note


@pytest.fixture(scope="module")
async def note(peewee_module_transaction):
    return await Note.aio_create(text="shared")


async def test_sees_the_shared_note(note):
    assert [n.text for n in await Note.select().aio_execute()] == ["shared"]
    await Comment.aio_create(note=note)
    await Note.update(text="changed").aio_execute()


async def test_changes_of_the_test_before_are_undone(note):
    assert [n.text for n in await Note.select().aio_execute()] == ["shared"]
    assert await Comment.select().aio_count() == 0


@pytest.fixture(scope="class")
async def second(peewee_class_transaction, note):
    return await Note.aio_create(text="class")


class TestAClass:
    async def test_sees_both(self, second):
        assert await Note.select().aio_count() == 2
"""


def test_data_shared_by_a_module_and_a_class(inner: pytest.Pytester) -> None:
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makepyfile(
        test_shared=SHARED,
        test_z_after="""
        from app.models import Note

        async def test_the_module_data_is_gone():
            assert await Note.select().aio_count() == 0
        """,
    )
    inner.runpytest().assert_outcomes(passed=4)


def test_shared_data_on_function_loops_names_the_setting(inner: pytest.Pytester) -> None:
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true", loop="function")
    inner.makepyfile(test_shared=SHARED)
    result = inner.runpytest()
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(["*the tests get a new event loop per function*asyncio_default_test_loop_scope*"])
