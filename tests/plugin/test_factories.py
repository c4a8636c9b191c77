"""The ``peewee_factory`` fixture and factory sequences under ``@pytest.mark.peewee_db(reset_sequences=True)``."""

from __future__ import annotations

import pytest

TESTS = """
import pytest
import pytest_asyncio
from app.models import Note
from peewee_async_testing import ConfigurationError, ModelFactory


class NoteFactory(ModelFactory[Note]):
    model = Note

    @classmethod
    def defaults(cls, n):
        return {"text": f"note {n}"}


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def kept(peewee_database):
    note = await NoteFactory.create()  # outside every test block: outlives the tests
    yield note
    await note.aio_delete_instance()


@pytest.mark.peewee_db(reset_sequences=True)
@pytest.mark.parametrize("run", [1, 2])
async def test_the_same_numbers_each_test(kept, peewee_factory, run):
    assert kept.text == "note 1"
    notes = [await peewee_factory(NoteFactory).create() for _ in range(2)]
    assert [note.text for note in notes] == ["note 2", "note 3"]  # past the kept row: unique holds


async def test_a_model_of_another_database_is_refused(peewee_factory):
    import peewee
    import peewee_async

    class Other(peewee_async.AioModel):
        class Meta:
            database = peewee_async.SqliteDatabase(":memory:")

    class OtherFactory(ModelFactory[Other]):
        model = Other

    with pytest.raises(ConfigurationError, match="is bound to .*, not to the test's database"):
        peewee_factory(OtherFactory)
"""


def test_factories_in_the_plugin(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_notes=TESTS)
    inner.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=3)
