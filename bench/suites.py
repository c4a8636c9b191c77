"""The generated test suites: one app, one test body, and every isolation strategy side by side.

Every test does the same (insert a row, then select it) against the same server; only its isolation
differs. The strategies share one pytest session, each round of tests running one test of each in a
shuffled order, so that whatever the machine does meanwhile touches them all alike, and no strategy
always follows the same one (a ``TRUNCATE`` makes the next test's statements re-plan). ``none`` isolates
nothing: the baseline that every other strategy's extra time per test is measured against.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

APP = """
import os

import peewee
import peewee_async

database = peewee_async.PostgresqlDatabase(
    "bench", host=os.environ["BENCH_HOST"], port=int(os.environ["BENCH_PORT"]), user="postgres",
    pool_params={"minsize": 1, "maxsize": 4},
)


class Base(peewee_async.AioModel):
    class Meta:
        database = database


class Item(Base):
    name = peewee.CharField()


class Tag(Base):
    item = peewee.ForeignKeyField(Item, null=True)
    label = peewee.CharField()


class Note(Base):
    text = peewee.TextField()


class Event(Base):
    kind = peewee.CharField()


class Log(Base):
    line = peewee.TextField()


MODELS = [Item, Tag, Note, Event, Log]
"""

TEST_BODIES = {
    "plain": (
        "async def test_{i}():\n"
        "    await Item.aio_create(name='n{i}')\n"
        "    assert await Item.select().where(Item.name == 'n{i}').aio_exists()\n\n"
    ),
    "atomic": (
        "async def test_{i}():\n"
        "    async with database.aio_atomic():\n"
        "        await Item.aio_create(name='n{i}')\n"
        "    assert await Item.select().where(Item.name == 'n{i}').aio_exists()\n\n"
    ),
}

INI = """[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = {loop}
asyncio_default_test_loop_scope = {loop}
{extra}
"""

PLUGIN_INI = """peewee_async_database = app:database
peewee_async_models = app
"""

# The mixed suite: every strategy in one session, so that the machine's drift touches them all alike.
# The plugin makes the database and its tables; the hand-written strategies are fixtures here.
MIXED_CONFTEST = '''
import pytest
import pytest_asyncio
from peewee_async.testing import TransactionTestCase

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
async def manual_tx(peewee_database, _peewee_pool_session):
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
async def upstream_tx(peewee_database, _peewee_pool_session):
    async with TransactionTestCase(database):
        yield


@pytest_asyncio.fixture
async def delete5(peewee_database, _peewee_pool_session):
    yield
    for model in reversed(MODELS):
        await model.delete().aio_execute()


@pytest_asyncio.fixture
async def truncate5(peewee_database, _peewee_pool_session):
    yield
    await database.aio_execute_sql("TRUNCATE item, tag, note, event, log RESTART IDENTITY CASCADE")


@pytest.fixture
def plain(peewee_database, _peewee_pool_session):
    """No isolation: the database and its pool, nothing else."""
'''

# "usual" cannot share a session: it needs pytest-asyncio's default loop per test.
USUAL_CONFTEST = '''
import pytest
import pytest_asyncio
from peewee_async.testing import TransactionTestCase

from app import MODELS, database


@pytest.fixture(scope="session", autouse=True)
def _tables():
    with database.allow_sync():
        database.drop_tables(MODELS, safe=True)
        database.create_tables(MODELS)
    yield
    with database.allow_sync():
        database.drop_tables(MODELS)


@pytest_asyncio.fixture
async def usual_tx():
    """What most projects have: a loop per test, so a pool per test, and upstream's case."""
    await database.aio_connect()
    async with TransactionTestCase(database):
        yield
    await database.aio_close()

'''


@dataclass(frozen=True)
class Strategy:
    name: str
    label: str
    fixture: str = ""  # a fixture of the conftest that the test asks for
    marker: str | None = None  # the peewee_db marker's arguments: the plugin isolates the test
    body: str = "plain"
    #: Runs in a session of its own (with ``none``): a ``TRUNCATE`` gives its tables new files, so every
    #: connection's next statement on them re-plans, and whichever strategy came next would pay for it.
    own_session: bool = False


STRATEGIES = [
    Strategy("none", "no isolation (baseline)", fixture="plain"),
    Strategy("manual", "hand-written BEGIN/ROLLBACK fixture", fixture="manual_tx"),
    Strategy("upstream", "upstream TransactionTestCase in a fixture", fixture="upstream_tx"),
    Strategy("ours", "peewee-async-testing in_transaction", marker=""),
    Strategy("delete5", "DELETE from 5 tables after each test", fixture="delete5"),
    Strategy("truncate5", "one TRUNCATE of 5 tables after each test", fixture="truncate5", own_session=True),
    Strategy("ours-clear", "peewee-async-testing clear_tables", marker="isolation='clear'"),
    Strategy("ours-autosavepoint", "in_transaction, autosavepoint=True", marker="autosavepoint=True"),
    Strategy(
        "ours-atomic",
        "in_transaction, allow_transactions, an aio_atomic block",
        marker="allow_transactions=True",
        body="atomic",
    ),
    Strategy("ours-reset", "in_transaction, reset_sequences=True", marker="reset_sequences=True"),
]
BY_NAME = {strategy.name: strategy for strategy in STRATEGIES}
USUAL = [Strategy("usual", "usual set-up: a loop and a pool per test, upstream's case", fixture="usual_tx")]
LABELS = {strategy.name: strategy.label for strategy in STRATEGIES + USUAL}
#: in_transaction as of an earlier commit (``run.py --before REF``), in a session of its own.
LABELS["ours-before"] = "in_transaction of an earlier commit (run.py --before)"


def _test(name: str, strategy: Strategy) -> str:
    body = TEST_BODIES[strategy.body].replace("async def test_{i}():", "async def test_{i}(" + strategy.fixture + "):")
    marker = "" if strategy.marker is None else f"@pytest.mark.peewee_db({strategy.marker})\n"
    return marker + body.replace("test_{i}", f"test_{name}").replace("{i}", name)


def write_suite(
    folder: Path, strategies: list[Strategy], rounds: int, *, loop: str = "session", plugin: bool = True
) -> None:
    """A suite of ``rounds`` rounds, each one test per strategy in a shuffled order (the same for every run
    of that size); test names say whose."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "app.py").write_text(APP)
    (folder / "pytest.ini").write_text(INI.format(loop=loop, extra=PLUGIN_INI if plugin else ""))
    (folder / "conftest.py").write_text(MIXED_CONFTEST if plugin else USUAL_CONFTEST)
    tests = []
    shuffle = random.Random(rounds)
    for r in range(rounds):
        order = shuffle.sample(strategies, len(strategies))
        tests += [_test(f"{r}__{strategy.name.replace('-', '_')}", strategy) for strategy in order]
    header = "import pytest\n\nfrom app import Item, database\n\n"
    (folder / "test_suite.py").write_text(header + "".join(tests))
