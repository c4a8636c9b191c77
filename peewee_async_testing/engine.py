"""The engine of one entry into a TransactionTestCase: its patches, its connection, its transaction, its undoing.

A :class:`CaseEngine` is built fresh for every entry and driven through its phases, in this order:

1. :meth:`~CaseEngine.patch` (synchronous, no query): register as the innermost open case of the database,
   make ``database.aio_connection()`` hand out the block's one connection, make ``aio_atomic()``,
   ``aio_transaction()``, ``aio_begin()`` and ``aio_savepoint()`` raise ``ValueError`` (or, with
   ``allow_transactions``, open savepoints), and refuse peewee's synchronous queries (they cannot see the
   test transaction);
2. :meth:`~CaseEngine.connection`, at the block's first query: take a connection (the loop pool's kept one, the outer
   case's, or one from the pool, connecting it first if needed) and ``BEGIN`` (``SAVEPOINT`` when nested);
3. :meth:`~CaseEngine.finish`: ``ROLLBACK`` (to the savepoint), set the sequences back, give the connection
   back (or close it, when broken); the patches stay, so a later query opens a new transaction;
4. :meth:`~CaseEngine.unpatch`: undo the patches and the registration, in any order with other cases'.

:meth:`~CaseEngine.close` is 3 then 4; :meth:`~CaseEngine.close_on_own_loop` does it from synchronous code.

Which block a query belongs to is decided per task (:func:`case_for_task`): the innermost case the task
knows (its own, or the one it was started in); none known, the one block open on the database, from any task.
"""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any

from peewee_async.databases import AioDatabase

from . import counters, drivers
from ._compat import SYNC_ALLOWED, add_note
from ._database import is_mysql, is_postgres
from .app_transactions import METHODS
from .app_transactions import stand_ins as app_stand_ins
from .connection import AioConnectionStandIn, SharedConnection
from .exceptions import TransactionError
from .patches import set_attributes
from .pools import replace_broken

if TYPE_CHECKING:
    from .pools import LoopPool

#: The cases open in this task (and inherited by the tasks it starts), innermost last.
_open: contextvars.ContextVar[tuple[CaseEngine, ...]] = contextvars.ContextVar("open_cases", default=())
#: The cases open on each database (by its id), from every task, oldest first: whom a task that knows none serves.
_registry: dict[int, list[CaseEngine]] = {}

# reset_sequences. At the start: every sequence the user may read and set (other sessions' temporary ones aside),
# with its state (last value, called) and, when an integer column owns it (serial, identity, OWNED BY) that the user
# may read, that column's largest value (smallest, for a descending one). The query that
# reads them is built from the catalog and run by query_to_xml(): one statement, whatever the schema. Each owned
# sequence whose next value is not one past that value (its start value when the column is empty, or when that is
# further on) is set to it; a sequence no column owns is left as it is. Returns (oid, last value, called, moved).
_OWNED = (
    "SELECT s.seqrelid AS oid, (SELECT '(SELECT ' || CASE WHEN s.seqincrement > 0 THEN 'max' ELSE 'min' END || '(' "
    "|| quote_ident(a.attname) || ')::numeric FROM ' || a.attrelid::regclass::text || ')' "
    "FROM pg_catalog.pg_depend AS d JOIN pg_catalog.pg_attribute AS a ON a.attrelid = d.refobjid "
    "AND a.attnum = d.refobjsubid WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = s.seqrelid "
    "AND d.objsubid = 0 AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.deptype IN ('a', 'i') "
    "AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype) "
    "AND has_column_privilege(a.attrelid, a.attnum, 'SELECT') LIMIT 1) AS extreme FROM pg_catalog.pg_sequence AS s "
    "WHERE has_sequence_privilege(s.seqrelid, 'SELECT') AND has_sequence_privilege(s.seqrelid, 'UPDATE') "
    "AND NOT pg_is_other_temp_schema((SELECT relnamespace FROM pg_catalog.pg_class WHERE oid = s.seqrelid))"
)
_STATE = (
    "SELECT string_agg('SELECT ' || oid::bigint || ' AS oid, last_value, is_called, ' || coalesce(extreme, 'NULL') "
    "|| ' AS extreme, ' || (extreme IS NOT NULL) || ' AS owned FROM ' || oid::regclass::text, ' UNION ALL ') "
    f"FROM ({_OWNED}) AS owned"
)
_SEQUENCES = (
    "SELECT v.oid, v.last_value, v.is_called, CASE WHEN NOT v.owned THEN NULL "
    "WHEN n.next > s.seqmax THEN pg_catalog.setval(v.oid, s.seqmax, true) "
    "WHEN n.next < s.seqmin THEN pg_catalog.setval(v.oid, s.seqmin, true) "
    "WHEN n.next = v.last_value::numeric + CASE WHEN v.is_called THEN s.seqincrement ELSE 0 END THEN NULL "
    "ELSE pg_catalog.setval(v.oid, n.next::bigint, false) END IS NOT NULL "
    f"FROM xmltable('/table/row' PASSING query_to_xml(({_STATE}), false, false, '') "
    "COLUMNS oid oid, last_value bigint, is_called boolean, extreme numeric, owned boolean) AS v "
    "JOIN pg_catalog.pg_sequence AS s ON s.seqrelid = v.oid, LATERAL (SELECT CASE WHEN v.extreme IS NULL THEN "
    "s.seqstart::numeric WHEN s.seqincrement > 0 THEN greatest(s.seqstart, v.extreme + s.seqincrement) "
    "ELSE least(s.seqstart, v.extreme + s.seqincrement) END) AS n (next)"
)
# At the end: set back the sequences moved at the start, or since (setval() is not transactional);
# {values}: (oid, last value, called, moved) literals.
_RESET_SEQUENCES = (
    "SELECT pg_catalog.setval(v.oid, v.last_value, v.is_called) "
    "FROM (VALUES {values}) AS v (oid, last_value, is_called, moved) JOIN pg_catalog.pg_sequence AS s "
    "ON s.seqrelid = v.oid WHERE v.moved OR pg_catalog.pg_sequence_last_value(v.oid) "
    "IS DISTINCT FROM CASE WHEN v.is_called THEN v.last_value END"
)

#: A sequence as a block found it: (oid, last value, called, moved at the start); on MySQL, a table's
#: AUTO_INCREMENT counter (:data:`~peewee_async_testing.counters.Counter`).
SequenceState = tuple[Any, ...]
#: Top-level reset_sequences blocks open at once on a database (in sibling tasks), by the database's id: the
#: sequences as the first found them, the blocks still open, and whether the first has read them. Each block's exit
#: would set back what the others moved since its start, so only the last one sets them back, to where they were
#: before the first began.
_sequence_groups: dict[int, tuple[list[SequenceState], set[CaseEngine], asyncio.Future[None]]] = {}
#: The set-back of the last block of a group, by the database's id, done when its setval() has run: a block that
#: starts meanwhile waits for it, else it would note the sequences as the group left them (reset), and set them
#: back there.
_setting_back: dict[int, asyncio.Future[None]] = {}

#: What a session keeps through a ROLLBACK, let go before the connection serves another test: session advisory
#: locks and prepared statements (psycopg 3 reads the DEALLOCATE ALL and forgets its own). Sent with the ROLLBACK.
_RESET_SESSION = "SELECT pg_catalog.pg_advisory_unlock_all(); DEALLOCATE ALL"
#: MySQL's: the named locks (GET_LOCK) go; autocommit is turned back on after the ROLLBACK (the block turned it off).
_MYSQL_RESET_SESSION = "DO RELEASE_ALL_LOCKS()"
#: How a top-level block opens its transaction on MySQL: with autocommit off, a statement that commits implicitly
#: (DDL, TRUNCATE...) or a deadlock ends only this transaction, and the next statement opens another, which the
#: block's ROLLBACK undoes: no later write of the block is committed.
_MYSQL_BEGIN = ("SET autocommit = 0", "START TRANSACTION")

OTHER_LOOP = (
    "This TransactionTestCase is nested in one opened on another event loop, and its connection belongs to "
    "that loop. Run the tests on the loop of the shared data: with pytest-asyncio, give the tests a loop_scope "
    "at least as wide as the shared fixture's scope, e.g. `asyncio_default_test_loop_scope = session` in the ini "
    'file or @pytest.mark.asyncio(loop_scope="module").'
)
OUTLIVED = (
    "This task was started inside a TransactionTestCase block that has ended (it outlived its block, or its "
    "test): the block's transaction is over, so the task's statements are refused, not run in another block. "
    "Await or cancel the tasks a block starts before the block ends."
)
SEVERAL_OPEN = (
    "A query came from a task outside every TransactionTestCase block (one started before them, such as an app's "
    "server task) while {count} TransactionTestCase blocks are open on this database in sibling tasks, so it "
    "belongs to none of them for sure. Start the task inside the block it serves, or open one block at a time."
)
NESTED_SIBLINGS = (
    "Another TransactionTestCase block nested in the same block is open, in a sibling task. Nested blocks run on "
    "savepoints of the outer block's one connection, so two at once would see, and undo, each other's rows. "
    "Open them one after the other, or open each task's block outside the shared one (its own connection)."
)
SYNC_QUERY = (
    "A synchronous query (peewee's sync API, `database.allow_sync()`) ran inside a TransactionTestCase block. "
    "It cannot see the test transaction, which runs on the block's async connection: it would read data without "
    "the test's rows, or wait for ever on their locks. Use the aio_ methods inside the block, or isolate the "
    'test by emptying tables instead: the `clear_tables` fixture, or @pytest.mark.peewee_db(isolation="clear").'
)
ENDED_ON_MYSQL = (
    "MySQL ended the test transaction inside the block, at {what}: DDL (CREATE, ALTER, DROP, TRUNCATE, RENAME...), "
    "LOCK TABLES and a few other statements commit implicitly, and a deadlock or a lock wait timeout rolls the "
    "transaction back. Rows written before it may remain in the database; the later ones were rolled back. Run a "
    'test that needs such statements with the `clear_tables` fixture (or @pytest.mark.peewee_db(isolation="clear"))'
)
NON_TRANSACTIONAL = (
    "the block wrote to a table that MySQL cannot roll back (its engine has no transactions), so those rows remain: "
    "{tables}. Make the test database's tables InnoDB (ENGINE=InnoDB), or run the test with the `clear_tables` "
    "fixture"
)
NESTED_COUNTERS = (
    "reset_sequences cannot apply to a TransactionTestCase nested in another on MySQL: setting an AUTO_INCREMENT "
    "counter (ALTER TABLE) commits the outer block's transaction. Use reset_sequences on the outermost block."
)
#: The tables of the current database whose engine has no transactions, each as "name (ENGINE)".
_NON_TRANSACTIONAL = (
    "SELECT CONCAT(t.TABLE_NAME, ' (', t.ENGINE, ')') FROM information_schema.TABLES AS t "
    "JOIN information_schema.ENGINES AS e ON e.ENGINE = t.ENGINE WHERE t.TABLE_SCHEMA = DATABASE() "
    "AND t.TABLE_TYPE = 'BASE TABLE' AND e.TRANSACTIONS <> 'YES' ORDER BY t.TABLE_NAME"
)
ENDED_INSIDE = (
    "the test transaction was ended inside the block (the code under test ran COMMIT or ROLLBACK itself), "
    "so rows written before that may remain in the database"
)


def _reset_sequences(sequences: list[SequenceState]) -> str:
    """The statement that sets the ``(oid, last value, called, moved)`` sequences back, their values written out:
    so it needs no parameters, and can travel with the ``ROLLBACK``."""
    values = ", ".join(
        f"({int(oid)}::oid, {int(last)}::bigint, {bool(called)}, {bool(moved)})"
        for oid, last, called, moved in sequences
    )
    return _RESET_SEQUENCES.format(values=values)


def _set_options(shared: SharedConnection, autosavepoint: bool, allow: bool, sql_transaction: bool, begun: int) -> None:
    """Set the options of a block on its connection (or the outer block's back)."""
    shared.autosavepoint, shared.allow_transactions, shared.sql_transaction, shared.begun = (
        autosavepoint,
        allow,
        sql_transaction,
        begun,
    )


def innermost(database: AioDatabase) -> CaseEngine | None:
    """The innermost case open on ``database`` in this task, if any."""
    return next((case for case in reversed(_open.get()) if case.database is database and case.patched), None)


def case_for_task(database: AioDatabase) -> CaseEngine:
    """The case whose block the calling task's queries on ``database`` belong to, or :class:`TransactionError`.

    The innermost case the task knows (opened in it, or in the task that started it), or the block nested in
    that one since; when it has ended, none: the task outlived its block, and must not fall through to a block
    opened since (a later test's). A task that knows none (started before every block) gets the one block open
    on the database (its innermost); with blocks open in sibling tasks (not nested in one another), none.
    """
    known = next((case for case in reversed(_open.get()) if case.database is database), None)
    if known is not None and not known.patched:
        raise TransactionError(OUTLIVED)
    cases = _registry.get(id(database), [])
    if known is None and len(cases) == 1:
        return cases[0]  # the one block open (the plugin's test): nothing nested in it
    if known is None:
        tops = [case for case in cases if case.outer is None or case.outer not in cases]
        if len(tops) != 1:
            raise TransactionError(SEVERAL_OPEN.format(count=len(tops)))
        known = tops[0]
    # Down to the block nested in it since, if any (one at a time: see patch()): on the one connection, that
    # block's savepoint is where the task's statements land.
    while (inner := next((case for case in cases if case.outer is known), None)) is not None:
        known = inner
    return known


def block_for_task(database: AioDatabase) -> CaseEngine | None:
    """:func:`case_for_task`, or None when the calling task is outside every block: none is open on ``database``,
    and the task knows none (a task that outlived its block is still refused)."""
    if id(database) not in _registry and not any(case.database is database for case in _open.get()):
        return None
    return case_for_task(database)


#: What the stand-ins replace on the database: every way its code reaches a connection.
PATCHED = ("aio_connection", *METHODS, "execute_sql", "cursor")


def stand_ins(database: AioDatabase) -> dict[str, Any]:
    """What a block puts on ``database``: every query and transaction of the calling task goes to its block
    (:func:`block_for_task`), and outside every block to what was there before (the database's own methods).

    peewee's synchronous path (``execute_sql()``, every sync query, and ``cursor()``) refuses while a block is open,
    from every thread, with :data:`SYNC_QUERY`; where peewee-async itself refuses (sync not allowed), its own
    ``AssertionError`` is kept.
    """
    beneath = {name: getattr(database, name) for name in PATCHED}

    def block() -> CaseEngine | None:
        return block_for_task(database)

    def connection() -> Awaitable[SharedConnection]:
        return case_for_task(database).connection()

    def execute_sql(*args: Any, **kwargs: Any) -> Any:
        if id(database) not in _registry or not getattr(database, SYNC_ALLOWED, False):
            return beneath["execute_sql"](*args, **kwargs)  # (peewee-async's "sync query is not allowed")
        raise TransactionError(SYNC_QUERY)

    def cursor(*args: Any, **kwargs: Any) -> Any:
        if id(database) not in _registry:
            return beneath["cursor"](*args, **kwargs)
        raise TransactionError(SYNC_QUERY)

    return {
        "aio_connection": AioConnectionStandIn(block, beneath["aio_connection"]),
        **app_stand_ins(block, connection, beneath),
        "execute_sql": execute_sql,
        "cursor": cursor,
    }


#: The stand-ins kept on a database for a while by :func:`standing_patches`, by the database's id.
_standing: dict[int, dict[str, Any]] = {}


@contextmanager
def standing_patches(database: AioDatabase) -> Iterator[None]:
    """Keep :func:`stand_ins` on ``database`` for the block: the blocks opened meanwhile find them in place and
    patch nothing themselves (the pytest plugin, for a session of tests). Changing the database object's attributes
    for every test costs each one more than its transaction; these serve a block and no block alike."""
    values = stand_ins(database)
    undo = set_attributes(database, values)
    previous = _standing.get(id(database))
    _standing[id(database)] = values
    try:
        yield
    finally:
        if previous is None:
            _standing.pop(id(database), None)
        else:
            _standing[id(database)] = previous
        undo()


def _standing_in_place(database: AioDatabase) -> bool:
    """Whether :func:`standing_patches` keeps its stand-ins on ``database`` now, none patched over since."""
    values = _standing.get(id(database))
    own = vars(database)
    return values is not None and all(own.get(name) is value for name, value in values.items())


class CaseEngine:
    """One entry into a TransactionTestCase (see the module's docstring for its phases).

    :param loop_pool: its kept connection serves instead of one from the pool (the pytest plugin's
        :class:`~peewee_async_testing.pools.LoopPool`, one per event loop).
    :param outer: the case to nest in (on a savepoint of its connection); by default the innermost one
        open on the database in this task.
    """

    def __init__(
        self,
        database: AioDatabase,
        *,
        allow_transactions: bool,
        autosavepoint: bool,
        reset_sequences: bool,
        loop_pool: LoopPool | None = None,
        outer: CaseEngine | None = None,
    ) -> None:
        self.database = database
        self.allow_transactions, self.autosavepoint, self.reset_sequences = (
            allow_transactions,
            autosavepoint,
            reset_sequences,
        )
        self.loop_pool = loop_pool
        self.outer = outer
        #: Nested by a test framework in data its tests share (an ``outer`` given), not by the code under test: it
        #: ends as a test's own case does, leaving nothing of the session to the next test.
        self._for_a_test = outer is not None
        #: The raw driver connection while a transaction is open, else None.
        self.raw: Any = None
        self.patched = False
        self._shared: SharedConnection | None = None
        self._savepoint: str | None = None
        self._sequences: list[SequenceState] | None = None
        self._pid: int | None = None
        self._pool: Any = None
        self._held: Any = None  # the connection taken from the pool, until it is given back
        self._loop: asyncio.AbstractEventLoop | None = None  # where the connection was opened
        self._undo_patches: Callable[[], None] | None = None
        self._transaction = AsyncExitStack()
        self._begin_lock = asyncio.Lock()
        self._block_error: BaseException | None = None  # what the block raised, while its exit runs

    # -- 1. patch ------------------------------------------------------------------------------------------

    def patch(self) -> None:
        """Register as the database's innermost case and patch it: synchronous, no query yet."""
        if self.patched:
            raise TransactionError("This TransactionTestCase is already active; create one per block.")
        self.outer = self.outer or innermost(self.database)
        if self.outer is not None and any(case.outer is self.outer for case in _registry.get(id(self.database), [])):
            raise TransactionError(NESTED_SIBLINGS)
        if not _standing_in_place(self.database):
            self._undo_patches = set_attributes(self.database, stand_ins(self.database))
        _open.set((*_open.get(), self))
        _registry.setdefault(id(self.database), []).append(self)
        self.patched = True

    def _unregister(self) -> None:
        _open.set(tuple(case for case in _open.get() if case is not self))
        cases = _registry.get(id(self.database), [])
        if self in cases:
            cases.remove(self)
        if not cases:
            _registry.pop(id(self.database), None)

    # -- 2. connection -------------------------------------------------------------------------------------

    @property
    def shared(self) -> SharedConnection | None:
        """The block's connection as the code under test sees it while the transaction is open, else None."""
        return self._shared

    async def connection(self) -> SharedConnection:
        """The block's connection; the first call opens it: acquire (or share the outer's), BEGIN (or SAVEPOINT)."""
        if self._shared is not None:
            return self._shared
        async with self._begin_lock:
            if self._shared is None:
                await self._begin(self._transaction)
        assert self._shared is not None
        return self._shared

    async def _begin(self, stack: AsyncExitStack) -> None:
        stack.push_async_exit(self._keep_block_error)  # the last exit step: it sees every other one fail
        stack.callback(self._forget)
        self._loop = asyncio.get_running_loop()
        shared = await self._connect(stack)
        if self.outer is None and shared.can_defer:
            shared.deferred = "BEGIN"  # goes with the block's first statement
        elif self.outer is None and shared.mysql:
            if self.reset_sequences and await self._join_sequence_group():
                try:  # before the transaction: ALTER TABLE commits
                    self._sequences = list(await counters.reset(shared.raw))
                    _sequence_groups[id(self.database)][0].extend(self._sequences)
                finally:
                    self._sequences_read()
            stack.push_async_exit(self._set_back_counters)
            await shared.control(*_MYSQL_BEGIN)
        elif self.outer is None:
            await shared.control("BEGIN")
        else:
            if self.reset_sequences and shared.mysql:
                raise TransactionError(NESTED_COUNTERS)
            self._savepoint = f"pwat_case_{uuid.uuid4().hex}"
            await shared.control(f"SAVEPOINT {self._savepoint}")
        stack.push_async_exit(self._roll_back)
        # This block's options while it is the innermost, the outer block's back when it ends (its savepoints,
        # a transaction opened with SQL among them, are gone with the rollback).
        outer_options = (shared.autosavepoint, shared.allow_transactions, shared.sql_transaction, shared.begun)
        stack.callback(_set_options, shared, *outer_options)
        _set_options(shared, self.autosavepoint, self.allow_transactions, False, 0)
        self._shared = shared
        # Inside the transaction, on aiopg with its deferred BEGIN.
        if self.reset_sequences and shared.postgres and (self.outer is not None or await self._join_sequence_group()):
            try:
                rows = await shared.fetch(_SEQUENCES)
                self._sequences = [(int(oid), int(last), bool(c), bool(moved)) for oid, last, c, moved in rows]
                if self.outer is None:
                    _sequence_groups[id(self.database)][0].extend(self._sequences)
            finally:
                self._sequences_read()

    async def _connect(self, stack: AsyncExitStack) -> SharedConnection:
        """The connection of the block: the outer case's, the loop pool's kept one, or a new one from the pool."""
        if self.outer is not None:
            if self.outer._shared is not None and self.outer._shared.loop is not asyncio.get_running_loop():
                raise TransactionError(OTHER_LOOP)
            shared = await self.outer.connection()
            self.raw = self.outer.raw
            return shared
        database = self.database
        self._pool = database.pool_backend
        if self.loop_pool is not None:
            self.raw = await self.loop_pool.kept_connection()
        else:
            if not database.is_connected:
                await database.aio_connect()
                self._pool = database.pool_backend
            self.raw = self._held = await self._pool.acquire()
            stack.push_async_callback(self._give_back)
        self._pid = drivers.backend_pid(self.raw)
        return SharedConnection(self.raw, postgres=is_postgres(database), mysql=is_mysql(database), database=database)

    async def _give_back(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            await self._pool.release(held)

    async def _replace_broken(self, exc: BaseException | None) -> None:
        """End the broken connection's server process (its locks go with it) through its replacement, taken once
        the broken one is given back: a pool of one connection is enough. A failure is said on the block's error."""
        assert self._pid is not None
        try:
            if self.loop_pool is not None:
                await self.loop_pool.replace_broken(self._pid)
            else:
                broken, self._held = self._held, None
                await self._pool.release(await replace_broken(self._pool, broken, self._pid))
        except Exception as error:
            message = (
                f"TransactionTestCase could not end the server process {self._pid} of its broken connection "
                f"({type(error).__name__}: {error}); if it still runs, its locks stay until the server ends it."
            )
            if exc is None:
                raise TransactionError(message) from error
            add_note(exc, message)

    async def _join_sequence_group(self) -> bool:
        """Join the top-level reset_sequences blocks open on the database; whether this one is the first, which
        resets the sequences and notes where they were. A sibling joining later shares that reset: it reads and
        sets nothing itself, and waits until the first has read them (else the first might note its nextval())."""
        loop = asyncio.get_running_loop()
        while (setting_back := _setting_back.get(id(self.database))) is not None and setting_back.get_loop() is loop:
            await asyncio.shield(setting_back)
        group = _sequence_groups.get(id(self.database))
        if group is None:
            _sequence_groups[id(self.database)] = ([], {self}, loop.create_future())
            return True
        group[1].add(self)
        if group[2].get_loop() is loop:  # (one of another loop cannot be waited for)
            await asyncio.shield(group[2])
        return False

    def _sequences_read(self) -> None:
        """The first block of a group has read the sequences (or failed to): its siblings may go on."""
        group = _sequence_groups.get(id(self.database))
        if group is not None and self in group[1] and not group[2].done():
            group[2].set_result(None)

    def _sequences_to_set_back(self) -> list[SequenceState] | None:
        """The sequences this block's exit sets back: its own when nested; when top-level, the group's if it is
        the last of its group to end, else none. Leaves the group (idempotent)."""
        if self.outer is not None:
            return self._sequences
        group = _sequence_groups.get(id(self.database))
        if group is None or self not in group[1]:
            return None
        group[1].discard(self)
        if group[1]:
            return None
        del _sequence_groups[id(self.database)]
        return group[0]

    def _forget(self) -> None:
        """The transaction is over: the next query (if any) opens a new one."""
        if self.loop_pool is not None and self.outer is None:
            self.loop_pool.lent = False
        self._sequences_read()
        self._sequences_to_set_back()  # (a block whose rollback did not run leaves its group all the same)
        self._shared, self._loop, self._savepoint, self.raw, self._sequences = None, None, None, None, None

    # -- 3. finish -----------------------------------------------------------------------------------------

    async def finish(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        """Roll back and give the connection back, keeping the patches: a later query opens a new transaction.

        From now on the block's connection refuses statements (a task holding it outlived the block)."""
        if self.outer is None and self._shared is not None:
            self._shared.ended = OUTLIVED
        await self._transaction.__aexit__(exc_type, exc, traceback)

    async def _keep_block_error(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> bool:
        """A step of the exit that failed (giving the connection back to a closed pool, say) never hides the
        block's own exception: the failure becomes a note on it."""
        block_error, self._block_error = self._block_error, None
        if block_error is None or exc is None or exc is block_error:
            return False
        add_note(block_error, f"TransactionTestCase could not end the block cleanly: {type(exc).__name__}: {exc}")
        raise block_error

    async def _roll_back(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> bool:
        """Roll back (to the savepoint, when nested); a failure never hides the block's own exception."""
        assert self._shared is not None
        self._block_error = exc
        raw, problem = self.raw, ""
        try:
            if self._savepoint is None and self._shared.deferred:  # no statement ran: nothing began
                self._shared.deferred = None
            elif not drivers.is_closed(raw) and self._shared.mysql:
                ended = self._shared.ended_by
                problem = "" if drivers.in_transaction(raw) else ENDED_INSIDE  # (a COMMIT past every guard)
                problem = problem if ended is None else ENDED_ON_MYSQL.format(what=ended)
                await self._send_roll_back(problem)
                if self._shared.warnings and self._savepoint is None:
                    problem = problem or await self._non_transactional()
            elif not drivers.is_closed(raw):
                problem = "" if drivers.in_transaction(raw) else ENDED_INSIDE
                await self._send_roll_back(problem)
        except Exception as error:
            # A connection that died took its transaction with it: the server keeps nothing of it.
            if not drivers.is_closed(raw):
                problem = problem or f"ROLLBACK failed ({type(error).__name__}: {error}); rows may remain"
                if self.outer is None:
                    await drivers.close(raw)
        except BaseException:  # cancelled while rolling back: never hand an open transaction to the pool
            await drivers.close(raw)
            raise
        # (A pool closed in the block, by aio_close(), closed the connection, and the server its transaction.)
        if drivers.is_closed(raw) and self._pid is not None and getattr(self._pool, "is_connected", True):
            await self._replace_broken(exc)
        if problem:
            message = f"TransactionTestCase could not undo the block: {problem}."
            if exc is None:
                raise TransactionError(message)
            add_note(exc, message)
        return False

    async def _non_transactional(self) -> str:
        """What to say when the ROLLBACK warned that it could not undo everything (MySQL): the tables it could not."""
        assert self._shared is not None
        tables = [str(name) for (name,) in await drivers.fetch_all(self.raw, _NON_TRANSACTIONAL)]
        return NON_TRANSACTIONAL.format(tables=", ".join(tables) or "a table of another database")

    async def _set_back_counters(self, *exc_info: object) -> bool:
        """After the rollback on MySQL: set back the AUTO_INCREMENT counters (see :mod:`.counters`), if this is the
        last reset_sequences block of its group to end."""
        sequences = self._sequences_to_set_back()
        if not sequences or self._shared is None or drivers.is_closed(self.raw):
            return False
        await self._setting_sequences_back(counters.set_back(self.raw, sequences))
        return False

    async def _setting_sequences_back(self, setting: Awaitable[None]) -> None:
        """Await ``setting`` (the statement that sets the sequences back), noted as under way for the database: a
        block that starts meanwhile waits for it (see :data:`_setting_back`)."""
        done = _setting_back[id(self.database)] = asyncio.get_running_loop().create_future()
        try:
            await setting
        finally:
            if _setting_back.get(id(self.database)) is done:
                del _setting_back[id(self.database)]
            done.set_result(None)

    async def _send_roll_back(self, problem: str) -> None:
        assert self._shared is not None
        if self._savepoint is None and self._shared.mysql:
            # (UNLOCK TABLES: a read lock of FLUSH ... WITH READ LOCK outlives the transaction; the code cannot send it)
            await self._shared.control("ROLLBACK", "SET autocommit = 1", "UNLOCK TABLES", _MYSQL_RESET_SESSION)
            return
        if self._savepoint is None:
            statements = ["ROLLBACK"]
        elif not problem:
            statements = [f"ROLLBACK TO SAVEPOINT {self._savepoint}"]
        else:
            statements = []  # no savepoint left to roll back to
        if self._shared.postgres and (self.outer is None or self._for_a_test):
            statements.append(_RESET_SESSION)
        elif self._shared.mysql and self._for_a_test:
            statements.append(_MYSQL_RESET_SESSION)
        sequences = self._sequences_to_set_back()
        if sequences:  # after the rollback: setval() is not transactional
            statements.append(_reset_sequences(sequences))
        if statements == ["ROLLBACK", _RESET_SESSION] and self.loop_pool is not None and self._shared.can_defer:
            # Only a ROLLBACK may leave its reply unread: the server undoes the transaction as the statement
            # arrives, before any later statement of this connection. A setval() is seen by other connections
            # at once, so the block must not end before it has run.
            await self.loop_pool.roll_back(self._shared, _RESET_SESSION)
        elif sequences:
            await self._setting_sequences_back(self._shared.control(*statements))
        elif statements:
            await self._shared.control(*statements)

    # -- 4. unpatch ----------------------------------------------------------------------------------------

    def unpatch(self) -> None:
        """Undo the patches and the registration (nothing if they are undone already)."""
        undo, self._undo_patches, self.patched = self._undo_patches, None, False
        try:
            if undo is not None:
                undo()
        finally:
            self._unregister()

    async def close(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        """:meth:`finish` (if a transaction is open), then :meth:`unpatch`, whatever happens."""
        try:
            await self.finish(exc_type, exc, traceback)
        finally:
            self.unpatch()

    def close_on_own_loop(self) -> None:
        """:meth:`close` from synchronous code (a pytest fixture's tear-down), on the loop the block ran on.

        That loop is idle between a test and its fixtures' tear-down. A case with no transaction open
        has only its patches to undo.
        """
        try:
            if self._loop is not None:
                self._loop.run_until_complete(self.finish(None, None, None))
        finally:
            self.unpatch()
