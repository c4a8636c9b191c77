"""After the session the app's database object is as it was, every attribute; during it, only where it points
has changed. (A set-up that fails half-way: tests/plugin/test_database_lifecycle.py.)"""

from __future__ import annotations

import pytest

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
        import peewee_async
        from app.db import database

        async def test_kept(in_transaction):
            assert database.database == "test_app"
            serializable = peewee_async.PostgresqlDatabase("x", isolation_level="SERIALIZABLE")._isolation_level
            assert serializable is not None
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


@pytest.mark.parametrize("engine", ["postgres", "sqlite"])
def test_every_attribute_is_kept_and_restored(inner: pytest.Pytester, engine: str) -> None:
    inner.path.joinpath("app", "db.py").write_text(POSTGRES if engine == "postgres" else SQLITE)
    inner.makeconftest(RESTORED)
    inner.makepyfile(KEPT[engine])
    inner.runpytest().assert_outcomes(passed=1)
    assert inner.path.joinpath("changed").read_text() == "[]"
