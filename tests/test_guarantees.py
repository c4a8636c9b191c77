"""The proof that isolation holds: random blocks, on every driver and every option, leave the database as they
found it.

A hypothesis state machine builds up committed data (tables, rows, sequences moved: what shared fixtures
make) and runs TransactionTestCase blocks over it, alone or two at once in sibling tasks. Each block runs a
random program: inserts (some breaking a unique key), updates, deletes, ``TRUNCATE``, DDL, raw transaction
control through ``aio_execute_sql``, ``aio_atomic()``/``aio_transaction()``/``peewee_async.Transaction``
blocks nested and failing part-way, gathered statements, advisory locks, ``nextval()``, ``PREPARE``, a
statement on ``case.connection``, a parameter the driver cannot send, and exceptions raised in the block.
Around each step, :mod:`tests.fingerprint` reads the database from an admin connection of its own; the
fingerprint after must equal the one before. Errors the program provokes are fine; a difference, a hang or
an error of another class fails the test, and hypothesis prints the smallest program that does it.

``-m thorough`` runs many more examples, not derandomized (``PEEWEE_ASYNC_TESTING_EXAMPLES`` sets how many).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import peewee
import peewee_async
import psycopg
import psycopg2
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test

from peewee_async_testing import PostgresServer, TransactionError, TransactionTestCase

from . import fingerprint
from .conftest import DRIVERS
from .helpers import admin, run_on_own_loop

#: A generous bound for one statement and for one block (its exit included): past it, the block hangs.
STATEMENT_TIMEOUT = 20.0
BLOCK_TIMEOUT = 60.0
#: Examples per driver in an ordinary run (x3 drivers: at least 200 in all), and under ``-m thorough``.
EXAMPLES = 70
THOROUGH_EXAMPLES = int(os.environ.get("PEEWEE_ASYNC_TESTING_EXAMPLES", "1000"))
OPTIONS = ("allow_transactions", "autosavepoint", "reset_sequences")


#: The table prefix of the first and second of sibling blocks.
SIBLING_PREFIXES = ("", "s_")


class Boom(Exception):
    """What the program raises inside a block or an app transaction, on purpose."""


class Hang(AssertionError):
    """A statement or a block did not finish in time."""


#: What a statement of the program may raise: refused transaction control and app transactions, database
#: errors (a broken unique key, a missing table, an aborted transaction), a parameter the driver cannot send.
EXPECTED = (
    peewee.PeeweeException,
    TransactionError,
    ValueError,
    psycopg2.Error,
    psycopg.Error,
    sqlite3.Error,
)


# -- the program of a block ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    """One statement on a table: ``op`` is a kind of write, DDL or read; ``n`` picks a value or a name."""

    kind: ClassVar[str] = "write"

    op: str
    table: str
    n: int

    def sql(self, block: Block) -> str:
        t, n, postgres = block.prefix + self.table, self.n, block.postgres
        return {
            "insert": f'INSERT INTO "{t}" (v, u) VALUES ({n}, {n})',  # u is unique: n from 0..3 collides
            "update": f'UPDATE "{t}" SET v = v + 1 WHERE u >= {n}',
            "delete": f'DELETE FROM "{t}" WHERE u = {n}',
            "truncate": f'TRUNCATE "{t}"' if postgres else f'DELETE FROM "{t}"',
            "create": _create_table(t, postgres),
            "alter": f'ALTER TABLE "{t}" ADD COLUMN c{n} integer',
            "index": f'CREATE INDEX "i_{t}_{n}" ON "{t}" (v)',
            "drop": f'DROP TABLE "{t}"',
            "nextval": f"SELECT nextval(pg_get_serial_sequence('{t}', 'id'))" if postgres else "SELECT 1",
            "select": f'SELECT count(*) FROM "{t}"',
        }[self.op]

    async def run(self, block: Block) -> None:
        await block.db.aio_execute_sql(self.sql(block))


@dataclass(frozen=True)
class Control:
    """Transaction control sent as plain SQL by the code under test."""

    kind: ClassVar[str] = "control"

    sql: str

    async def run(self, block: Block) -> None:
        await block.db.aio_execute_sql(self.sql)


@dataclass(frozen=True)
class Lock:
    """An advisory lock: held by the session (``xact=False``) or by the transaction."""

    kind: ClassVar[str] = "advisory lock"

    key: int
    xact: bool

    async def run(self, block: Block) -> None:
        if block.postgres:
            function = "pg_advisory_xact_lock" if self.xact else "pg_advisory_lock"
            await block.db.aio_execute_sql(f"SELECT {function}({block.lock_base + self.key})")


@dataclass(frozen=True)
class Prepare:
    """A prepared statement, which lives as long as the server session."""

    kind: ClassVar[str] = "prepare"

    n: int

    async def run(self, block: Block) -> None:
        if block.postgres:
            await block.db.aio_execute_sql(f"PREPARE pwat_proof_{self.n} AS SELECT {self.n}")


@dataclass(frozen=True)
class BadParameter:
    """A statement the driver refuses before it reaches the server: a parameter it cannot adapt."""

    kind: ClassVar[str] = "bad parameter"

    async def run(self, block: Block) -> None:
        await block.db.aio_execute_sql("SELECT %s" if block.postgres else "SELECT ?", (object(),))


@dataclass(frozen=True)
class OnCaseConnection:
    """A write sent on ``case.connection``, the block's driver connection, past the database object."""

    kind: ClassVar[str] = "case.connection"

    write: Write

    async def run(self, block: Block) -> None:
        async with block.case.connection.cursor() as cursor:
            await cursor.execute(self.write.sql(block))


@dataclass(frozen=True)
class Raise:
    """An exception raised in the block: it ends the block."""

    kind: ClassVar[str] = "raise"

    async def run(self, block: Block) -> None:
        raise Boom("raised in the block on purpose")


@dataclass(frozen=True)
class AppTransaction:
    """The code under test's own transaction (``aio_atomic()``, ``aio_transaction()``, or
    ``peewee_async.Transaction`` on ``aio_connection()``) around ``body``; ``fail``: raise at its end."""

    kind: str
    body: tuple[Any, ...]
    fail: bool

    async def run(self, block: Block) -> None:
        try:
            if self.kind == "Transaction":
                async with block.db.aio_connection() as connection, peewee_async.Transaction(connection):
                    await self._body(block)
            else:
                async with getattr(block.db, self.kind)():
                    await self._body(block)
        except Boom:
            pass

    async def _body(self, block: Block) -> None:
        for action in self.body:
            await block.perform(action)
        if self.fail:
            raise Boom("raised in an app transaction on purpose")


@dataclass(frozen=True)
class Gather:
    """Two actions at once, in two tasks started inside the block (which share it)."""

    kind: ClassVar[str] = "gather"

    first: Any
    second: Any

    async def run(self, block: Block) -> None:
        await asyncio.gather(block.perform(self.first), block.perform(self.second))


def _create_table(name: str, postgres: bool) -> str:
    key = "id serial PRIMARY KEY" if postgres else "id INTEGER PRIMARY KEY AUTOINCREMENT"
    return f'CREATE TABLE "{name}" ({key}, v integer NOT NULL DEFAULT 0, u integer UNIQUE)'


#: Tables: t0 is always there, t1 once the machine made it, n0 only if the block creates it.
_TABLES = st.sampled_from(["t0", "t0", "t1", "n0"])
_OPS = ["insert", "insert", "update", "delete", "truncate", "create", "alter", "index", "drop", "nextval", "select"]
_CONTROL = [
    "BEGIN",
    "START TRANSACTION",
    "COMMIT",
    "END",
    "ROLLBACK",
    "SAVEPOINT s1",
    "RELEASE SAVEPOINT s1",
    "ROLLBACK TO SAVEPOINT s1",
]


#: How the code under test opens its own transactions: the database's methods, or peewee-async's class itself.
APP_TRANSACTIONS = ["aio_atomic", "aio_transaction", "Transaction"]


def _simple_actions() -> st.SearchStrategy[Any]:
    """The actions of one statement, by kind; writes the likeliest."""
    writes = st.builds(Write, st.sampled_from(_OPS), _TABLES, st.integers(0, 3))
    kinds = {
        "write": writes,
        "control": st.builds(Control, st.sampled_from(_CONTROL)),
        "advisory lock": st.builds(Lock, st.integers(0, 2), st.booleans()),
        "prepare": st.builds(Prepare, st.integers(0, 1)),
        "bad parameter": st.just(BadParameter()),
        "case.connection": st.builds(OnCaseConnection, writes),
    }
    weights = {"write": 6, "control": 3}
    names = [name for name in kinds for _ in range(weights.get(name, 1))]
    return st.sampled_from(names).flatmap(kinds.__getitem__)


def _actions() -> st.SearchStrategy[Any]:
    simple = _simple_actions()
    concurrent = simple.filter(lambda action: not isinstance(action, OnCaseConnection))  # past the lock: one at once
    return st.recursive(
        simple,
        lambda inner: st.one_of(
            st.builds(
                AppTransaction,
                st.sampled_from(APP_TRANSACTIONS),
                st.lists(inner, max_size=3).map(tuple),
                st.booleans(),
            ),
            st.builds(Gather, concurrent, concurrent),
        ),
        max_leaves=6,
    )


@dataclass(frozen=True)
class Spec:
    """One block: its options and its program."""

    options: tuple[bool, bool, bool]
    program: tuple[Any, ...]

    def kwargs(self) -> dict[str, bool]:
        return dict(zip(OPTIONS, self.options, strict=True))


def _program(actions: list[Any], raise_at: int) -> tuple[Any, ...]:
    """The actions, with an exception raised before the one at ``raise_at`` (if it is one of them)."""
    return (*actions[:raise_at], Raise(), *actions[raise_at:]) if raise_at < len(actions) else tuple(actions)


SPECS = st.builds(
    Spec,
    st.tuples(st.booleans(), st.booleans(), st.booleans()),
    st.builds(_program, st.lists(_actions(), min_size=1, max_size=8), st.integers(0, 15)),
)


# -- running a block -----------------------------------------------------------------------------------------------


@dataclass
class Block:
    """A block being run: the database object, its case; sibling blocks, on two connections, keep to tables
    and advisory lock keys of their own (``prefix``, ``lock_base``), so that neither waits on the other."""

    db: Any
    case: TransactionTestCase
    prefix: str
    lock_base: int
    postgres: bool = field(init=False)

    def __post_init__(self) -> None:
        self.postgres = not isinstance(self.db, peewee_async.SqliteDatabase)

    async def perform(self, action: Any) -> None:
        """Run one action; an error the program provokes on purpose is fine, a hang is not."""
        try:
            await asyncio.wait_for(action.run(self), STATEMENT_TIMEOUT)
        except asyncio.TimeoutError:
            raise Hang(f"{action} did not finish within {STATEMENT_TIMEOUT} s") from None
        except EXPECTED:
            pass


async def run_block(db: Any, spec: Spec, sibling: int) -> None:
    """Run ``spec``'s program inside a TransactionTestCase on ``db``; what the program raises on purpose, and
    a refusal at the exit (the fingerprint tells whether it was right), end the block and are fine."""
    case = TransactionTestCase(db, **spec.kwargs())
    block = Block(db, case, SIBLING_PREFIXES[sibling], 100 * sibling)
    try:
        async with case:
            for action in spec.program:
                await block.perform(action)  # Raise ends the block
    except (Boom, *EXPECTED):
        pass


# -- the machine ---------------------------------------------------------------------------------------------------


@dataclass
class Place:
    """Where the machine runs: the driver, and its database (PostgreSQL: name and parameters; or an SQLite
    file)."""

    driver: str
    params: dict[str, Any]
    admin_params: dict[str, Any]
    sqlite_path: Path
    seen: set[tuple[bool, bool, bool]] = field(default_factory=set)

    @property
    def postgres(self) -> bool:
        return self.driver != "sqlite"

    def database(self) -> Any:
        """A new peewee-async database object: one per block, since a pool belongs to the loop it opened on."""
        if not self.postgres:
            return fingerprint.SqliteDatabase(str(self.sqlite_path))
        if self.driver == "aiopg":
            return peewee_async.PostgresqlDatabase(**self.params, pool_params={"minsize": 0, "maxsize": 10})
        return peewee_async.Psycopg3Database(**self.params, pool_params={"min_size": 0, "max_size": 10})


class Isolation(RuleBasedStateMachine):
    """Committed data grows between blocks; no block changes it."""

    place: Place

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[str] = []
        self.admin = fingerprint.admin_connection(self.place.admin_params) if self.place.postgres else None

    # -- committed data, as shared fixtures make it (outside any block) --

    def commit(self, sql: str) -> None:
        if self.admin is not None:
            with self.admin.cursor() as cursor:
                cursor.execute(sql)
        else:
            connection = sqlite3.connect(self.place.sqlite_path, isolation_level=None)
            try:
                connection.execute(sql)
            finally:
                connection.close()

    @initialize()
    def make_t0(self) -> None:
        self.make_table("t0")

    @precondition(lambda self: "t1" not in self.tables)
    @rule()
    def make_t1(self) -> None:
        self.make_table("t1")

    def make_table(self, name: str) -> None:
        for prefix in SIBLING_PREFIXES if self.place.postgres else SIBLING_PREFIXES[:1]:
            self.commit(_create_table(prefix + name, self.place.postgres))
            self.commit(f'INSERT INTO "{prefix}{name}" (v, u) VALUES (0, 0), (1, 1)')
        self.tables.append(name)

    @rule(table=st.sampled_from(["t0", "t1"]), u=st.integers(2, 6))
    def commit_row(self, table: str, u: int) -> None:
        if table in self.tables:
            self.commit(f'INSERT INTO "{table}" (v, u) VALUES ({u}, {u}) ON CONFLICT DO NOTHING')

    # -- blocks --

    @rule(spec=SPECS)
    def block(self, spec: Spec) -> None:
        self.check([spec])

    @precondition(lambda self: self.place.postgres)  # SQLite has one writer at a time: one would wait
    @rule(first=SPECS, second=SPECS)
    def sibling_blocks(self, first: Spec, second: Spec) -> None:
        """Two blocks at once, in sibling tasks: each its own connection and transaction."""
        self.check([first, second])

    def check(self, specs: list[Spec]) -> None:
        self.place.seen.update(spec.options for spec in specs)
        sequences = all(spec.kwargs()["reset_sequences"] for spec in specs)
        before, after = run_on_own_loop(asyncio.wait_for(self.around(specs, sequences), BLOCK_TIMEOUT * 2))
        changed = {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}
        assert not changed, "the block left a trace:\n" + "\n".join(
            f"  {key}: before {before.get(key)!r}, after {after.get(key)!r}" for key in sorted(changed)
        )

    async def around(self, specs: list[Spec], sequences: bool) -> tuple[dict[str, Any], dict[str, Any]]:
        db = self.place.database()
        try:
            before = await self.fingerprint(db, sequences)
            blocks = [run_block(db, spec, sibling) for sibling, spec in enumerate(specs)]
            try:
                await asyncio.wait_for(asyncio.gather(*blocks), BLOCK_TIMEOUT)
            except asyncio.TimeoutError:
                raise Hang(f"the block did not end within {BLOCK_TIMEOUT} s") from None
            return before, await self.fingerprint(db, sequences)
        finally:
            await db.aio_close()

    async def fingerprint(self, db: Any, sequences: bool) -> dict[str, Any]:
        found = {
            "patches on the database": sorted(name for name in vars(db) if name.startswith("aio_")),
            **await fingerprint.pool_sessions(db, STATEMENT_TIMEOUT),
        }
        if self.admin is not None:
            found.update(fingerprint.postgres(self.admin, sequences=sequences))
        else:
            found.update(fingerprint.sqlite(str(self.place.sqlite_path)))
        return found

    def teardown(self) -> None:
        """Start the next example afresh: every connection to the database ended, its tables gone."""
        if self.admin is not None:
            with self.admin.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                cursor.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
            self.admin.close()
        else:
            for suffix in ("", "-journal", "-wal", "-shm"):
                Path(f"{self.place.sqlite_path}{suffix}").unlink(missing_ok=True)


# -- the tests -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=DRIVERS)
def place(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Place]:
    """The driver, and a database of the machine's own (PostgreSQL: made here, dropped at the end)."""
    sqlite_path = tmp_path_factory.mktemp("guarantees") / "guarantees.db"
    if request.param == "sqlite":
        yield Place("sqlite", {}, {}, sqlite_path)
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = f"test_pwat_guarantees_{uuid.uuid4().hex[:8]}"
    admin(server, f'CREATE DATABASE "{name}"')
    try:
        params = server.connect_params(name, driver="psycopg" if request.param == "psycopg" else "aiopg")
        yield Place(request.param, params, server.connect_params(name), sqlite_path)
    finally:
        admin(server, f'DROP DATABASE "{name}" WITH (FORCE)')


def _run(place: Place, **overrides: Any) -> None:
    machine: type[Isolation] = type("Isolation", (Isolation,), {"place": place})
    run_state_machine_as_test(
        machine,
        settings=settings(
            deadline=None,
            database=None,
            stateful_step_count=6,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
            print_blob=True,
            **overrides,
        ),
    )


def test_no_block_leaves_a_trace(place: Place) -> None:
    """Random blocks of every option combination leave the database as they found it (reproducible: the
    examples are the same on every run)."""
    place.seen.clear()
    _run(place, max_examples=EXAMPLES, derandomize=True)
    combinations = {(a, b, c) for a in (False, True) for b in (False, True) for c in (False, True)}
    assert place.seen == combinations, f"option combinations never tried: {combinations - place.seen}"


@pytest.mark.thorough
def test_no_block_leaves_a_trace_thorough(place: Place) -> None:
    """The same, with many more examples, new on every run: ``pytest -m thorough tests/test_guarantees.py``."""
    _run(place, max_examples=THOROUGH_EXAMPLES, derandomize=False)
