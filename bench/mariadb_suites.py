"""The MariaDB benchmark: in_transaction per test against peewee-async's own TransactionTestCase there.

The same test as for PostgreSQL (insert a row, select it), on ``peewee_async.MySQLDatabase`` (aiomysql), each
strategy one test per round in a shuffled order, all in one pytest session, repeated; a strategy's extra time
per test is its median minus no isolation's in the same session. Strategies: no isolation, a hand-written
``BEGIN``/``ROLLBACK`` fixture, upstream's ``peewee_async.testing.TransactionTestCase`` in a
fixture, this package's ``TransactionTestCase`` in a fixture (the engine ``in_transaction`` runs), and the
plugin's ``in_transaction`` itself where the plugin runs on MySQL (a probe session says whether it does).

The server: a throwaway :class:`peewee_async_testing.MariaDBServer`, stopped and removed at the end.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from suites import INI, Strategy, _test

from peewee_async_testing import MariaDBServer

APP = """
import os

import peewee
import peewee_async

database = peewee_async.MySQLDatabase(
    "bench", host=os.environ["BENCH_MYSQL_HOST"], port=int(os.environ["BENCH_MYSQL_PORT"]),
    user=os.environ["BENCH_MYSQL_USER"], password=os.environ.get("BENCH_MYSQL_PASSWORD", ""),
    pool_params={"minsize": 1, "maxsize": 4},
)


class Base(peewee_async.AioModel):
    class Meta:
        database = database


class Item(Base):
    name = peewee.CharField()


MODELS = [Item]
"""

CONFTEST = '''
import pytest
import pytest_asyncio
from peewee_async.testing import TransactionTestCase as UpstreamCase

from peewee_async_testing import TransactionTestCase

from app import MODELS, database


class _Borrowed:
    def __init__(self, connection):
        self.connection = connection

    def __call__(self):
        return self

    async def __aenter__(self):
        return self.connection

    async def __aexit__(self, *exc):
        pass


@pytest_asyncio.fixture
async def manual_tx({deps}):
    """The least a transaction per test costs: BEGIN/ROLLBACK on one connection, aio_connection patched to it."""
    connection = await database.pool_backend.acquire()
    async with connection.cursor() as cursor:
        await cursor.execute("BEGIN")
    database.aio_connection = _Borrowed(connection)
    yield
    del database.aio_connection
    async with connection.cursor() as cursor:
        await cursor.execute("ROLLBACK")
    await database.pool_backend.release(connection)


@pytest_asyncio.fixture
async def upstream_tx({deps}):
    async with UpstreamCase(database):
        yield


@pytest_asyncio.fixture
async def ours_tx({deps}):
    async with TransactionTestCase(database):
        yield


@pytest.fixture
def plain({deps}):
    """No isolation."""
'''

#: Without the plugin: the tables made for the session here.
TABLES = """

@pytest.fixture(scope="session", autouse=True)
def _tables():
    with database.allow_sync():
        database.drop_tables(MODELS, safe=True)
        database.create_tables(MODELS)
    yield
    with database.allow_sync():
        database.drop_tables(MODELS)
"""

#: The plugin's own set-up on MySQL: it makes the test database; the tests take in_transaction.
PLUGIN_INI = "peewee_async_database = app:database\npeewee_async_models = app\n"

STRATEGIES = [
    Strategy("none", "no isolation (baseline)", fixture="plain"),
    Strategy("manual", "hand-written BEGIN/ROLLBACK fixture", fixture="manual_tx"),
    Strategy("upstream", "upstream TransactionTestCase in a fixture", fixture="upstream_tx"),
    Strategy("ours-case", "peewee-async-testing TransactionTestCase in a fixture", fixture="ours_tx"),
]
#: The plugin's in_transaction: measured where the plugin runs on MySQL.
IN_TRANSACTION = Strategy("ours", "peewee-async-testing in_transaction", marker="")
LABELS = {strategy.name: strategy.label for strategy in [*STRATEGIES, IN_TRANSACTION]}


def write_suite(folder: Path, strategies: list[Strategy], rounds: int, *, plugin: bool) -> None:
    """``rounds`` rounds of one test per strategy, shuffled (the same order for every run of that size);
    ``plugin``: the plugin makes the test database and its tables (``peewee_async_database``)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "app.py").write_text(APP)
    (folder / "pytest.ini").write_text(INI.format(loop="session", extra=PLUGIN_INI if plugin else ""))
    deps = "peewee_database, _peewee_pool_session" if plugin else ""  # the plugin's test database, set up first
    (folder / "conftest.py").write_text(CONFTEST.replace("{deps}", deps) + ("" if plugin else TABLES))
    shuffle = random.Random(rounds)
    tests = []
    for r in range(rounds):
        order = shuffle.sample(strategies, len(strategies))
        tests += [_test(f"{r}__{strategy.name.replace('-', '_')}", strategy) for strategy in order]
    (folder / "test_suite.py").write_text("import pytest\n\nfrom app import Item, database\n\n" + "".join(tests))


def bench_mariadb(
    run_pytest: Callable[..., dict[str, Any]],
    per_strategy: Callable[[list[list[Any]]], dict[str, float]],
    summary: Callable[[list[float]], dict[str, float]],
    env: dict[str, str],
    work: Path,
    rounds: int,
    reps: int,
) -> dict[str, Any]:
    """Every MariaDB strategy in one session, ``reps`` sessions; the plugin's in_transaction in them too when a
    probe session shows that the plugin runs on MySQL (else why not, in ``in_transaction``)."""
    with MariaDBServer() as server:
        params = server.connect_params("bench")
        _admin(server, "CREATE DATABASE bench")
        env = {
            **env,
            "BENCH_MYSQL_HOST": str(params["host"]),
            "BENCH_MYSQL_PORT": str(params["port"]),
            "BENCH_MYSQL_USER": str(params["user"]),
            "BENCH_MYSQL_PASSWORD": str(params.get("password") or ""),
        }
        env.pop("PEEWEE_ASYNC_TESTING_DSN", None)  # the PostgreSQL server's: not this one
        probe = work / "mariadb-probe"
        write_suite(probe, [STRATEGIES[0], IN_TRANSACTION], 1, plugin=True)
        try:
            run_pytest(probe, env)
            plugin, why_not = True, ""
        except RuntimeError as failed:
            plugin, why_not = False, str(failed).strip().splitlines()[-1][:160]
        strategies = [*STRATEGIES, IN_TRANSACTION] if plugin else STRATEGIES
        write_suite(work / "mariadb", strategies, rounds, plugin=plugin)
        times: dict[str, list[float]] = {}
        extra: dict[str, list[float]] = {}
        for rep in range(reps):
            session = per_strategy(run_pytest(work / "mariadb", env)["starts"])
            for name, value in session.items():
                times.setdefault(name, []).append(value)
                extra.setdefault(name, []).append(value - session["none"])
            print(f"  MariaDB rep {rep + 1}/{reps}: " + ", ".join(f"{n} {v[-1] * 1000:.3f}" for n, v in extra.items()))
        version = _admin(server, "SELECT VERSION()")[0][0]
    return {
        "server": f"MariaDB {version}",
        "in_transaction": "measured" if plugin else f"not measured: the plugin does not run on MySQL here ({why_not})",
        "per_test": {name: summary(values) for name, values in times.items()},
        "extra": {name: summary(values) for name, values in extra.items()},
    }


def _admin(server: MariaDBServer, sql: str) -> list[Any]:
    connection = server.connect()
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall())
    finally:
        connection.close()
