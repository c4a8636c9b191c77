"""After the session the app's database object is as it was, every attribute; during it, only where it points
has changed; and a set-up that fails half-way leaves nothing behind."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from .project import APP_MODELS, CONFIGURED, make_ini

#: Records, after the plugin's own unconfigure, which attributes of the object are not the identical ones.
RESTORED = """
import pytest
from app.db import database

BEFORE = dict(vars(database))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    after = vars(database)
    changed = sorted(key for key in BEFORE.keys() | after.keys() if BEFORE.get(key, ...) is not after.get(key, ...))
    config.rootpath.joinpath("changed").write_text(repr(changed))
"""

POSTGRES = """
import os

import peewee_async

database = peewee_async.PostgresqlDatabase(
    "app", host=os.environ["INNER_HOST"], port=int(os.environ["INNER_PORT"]), user="postgres",
    isolation_level="SERIALIZABLE", encoding="UTF8", pool_params={"minsize": 0, "maxsize": 3},
)
"""

SQLITE = """
import peewee_async

database = peewee_async.SqliteDatabase("app.db", timeout=30, pragmas={"cache_size": -2000})
"""

KEPT = {
    "postgres": """
        from app.db import database

        async def test_kept(in_transaction):
            assert database.database == "test_app"
            serializable = database._adapter.isolation_level_int("SERIALIZABLE")
            assert (database._isolation_level, database._encoding) == (serializable, "UTF8")
            assert (database.pool_params["minsize"], database.pool_params["maxsize"]) == (0, 3)
        """,
    "sqlite": """
        from app.db import database

        async def test_kept(in_transaction):
            assert database.database.endswith("test_app.db")
            assert (database._timeout, database._pragmas) == (30, [("cache_size", -2000)])
        """,
}

BROKEN_MODEL = """

class Broken(peewee_async.AioModel):
    value = peewee.IntegerField()

    class Meta:
        database = database
        indexes = ((("no_such_column",), False),)  # its table is made, then CREATE INDEX fails
"""


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary folder of the inner run (in-process: tempfile's own setting)."""
    folder = tmp_path / "inner-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.mark.parametrize("engine", ["postgres", "sqlite"])
def test_every_attribute_is_kept_and_restored(inner: pytest.Pytester, engine: str) -> None:
    inner.path.joinpath("app", "db.py").write_text(POSTGRES if engine == "postgres" else SQLITE)
    inner.makeconftest(RESTORED)
    inner.makepyfile(KEPT[engine])
    inner.runpytest().assert_outcomes(passed=1)
    assert inner.path.joinpath("changed").read_text() == "[]"


@pytest.mark.parametrize("engine", ["postgres", "sqlite"])
def test_a_set_up_that_fails_half_way_leaves_nothing(inner: pytest.Pytester, engine: str, temp_dir: Path) -> None:
    if engine == "sqlite":
        inner.path.joinpath("app", "db.py").write_text(SQLITE)
    inner.path.joinpath("app", "models.py").write_text(APP_MODELS + BROKEN_MODEL)
    make_ini(inner, CONFIGURED)
    inner.makeconftest(RESTORED)
    inner.makepyfile("\n".join(f"async def test_{n}(in_transaction):\n    pass\n" for n in range(3)))
    result = inner.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stdout.str().count("could not make the test database") == 1
    assert inner.path.joinpath("changed").read_text() == "[]"
    assert list(temp_dir.iterdir()) == []  # (the app_database fixture checks that no test database is left)
