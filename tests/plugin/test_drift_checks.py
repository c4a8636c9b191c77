"""The drift checks under the plugin: the schema it built matches the models, an ``ALTER TABLE`` inside the
``in_transaction`` fixture is seen (and rolled back), and the model module nothing imports is named."""

from __future__ import annotations

import pytest

EXTRA = """
import peewee
import peewee_async

from app.db import database


class Tag(peewee_async.AioModel):
    label = peewee.CharField()

    class Meta:
        database = database
"""

TESTS = """
import pytest

from app.db import database
from app.models import Comment, Note
from peewee_async_testing import assert_all_models_registered, assert_models_match_schema


async def test_the_schema_the_plugin_built_matches(in_transaction):
    await assert_models_match_schema(database, [Note, Comment])


async def test_an_alter_table_in_the_test_transaction_is_seen(in_transaction):
    await database.aio_execute_sql('ALTER TABLE "comment" ADD COLUMN "extra" TEXT')
    with pytest.raises(AssertionError, match='comment: column "extra" not in the models'):
        await assert_models_match_schema(database, [Note, Comment])


async def test_it_was_rolled_back(in_transaction):
    await assert_models_match_schema(database, [Note, Comment])


def test_every_model_is_registered():
    assert_all_models_registered("app")
"""


def test_the_drift_checks_under_the_plugin(inner: pytest.Pytester) -> None:
    inner.path.joinpath("app", "extra.py").write_text(EXTRA)  # imported by nothing the plugin imports
    inner.makepyfile(test_drift=TESTS)
    result = inner.runpytest_subprocess("-p", "no:randomly")  # its own testdb.CREATED_MODELS, and app modules
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*1 model defined under app not among the 2 models given:",
            '*  app.extra.Tag (table "tag")',
            "*Nothing the plugin imports imports the module app.extra, so the test database was built without it: add"
            " the module to the `peewee_async_models` ini list, or import it from the database's module.",
        ]
    )
