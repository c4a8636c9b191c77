"""Every statement of a block runs inside its transaction, whatever path sent it; transaction control sent as
SQL by the code under test never ends the test transaction (on savepoints, or refused)."""

from __future__ import annotations

from typing import Any

import peewee
import peewee_async
import pytest

from peewee_async_testing import TransactionError, TransactionTestCase
from peewee_async_testing.statements import BEGIN, COMMIT, PREPARED, ROLLBACK, SAVEPOINT, control_statements

from .helpers import is_mysql, is_sqlite, names, only_postgres
from .models import Author


def insert(db: Any) -> str:
    return f"INSERT INTO author (name) VALUES ({'?' if is_sqlite(db) else '%s'})"


def needs_postgres(db: Any) -> None:
    if is_sqlite(db):
        pytest.skip("PostgreSQL only: SQLite's driver runs one statement per execute()")


# -- the scanner ---------------------------------------------------------------------------------------------------


def kinds(sql: str, postgres: bool = True) -> list[str | None] | None:
    found = control_statements(sql, postgres=postgres)
    return None if found is None else [kind for _, _, kind in found]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 1", None),
        ("INSERT INTO t VALUES ('BEGIN')", None),
        ("  insert into t values (1)", None),
        ("begin", [BEGIN]),
        ("BEGIN ISOLATION LEVEL SERIALIZABLE", [BEGIN]),
        ("Start Transaction", [BEGIN]),
        ("start_time", None),
        ("COMMIT", [COMMIT]),
        ("end work", [COMMIT]),
        ("ROLLBACK", [ROLLBACK]),
        ("abort", [ROLLBACK]),
        ("ROLLBACK TO SAVEPOINT a", [SAVEPOINT]),
        ("rollback work to a", [SAVEPOINT]),
        ("SAVEPOINT a", [SAVEPOINT]),
        ("RELEASE a", [SAVEPOINT]),
        ("PREPARE TRANSACTION 'x'", [PREPARED]),
        ("COMMIT PREPARED 'x'", [PREPARED]),
        ("PREPARE q AS SELECT 1", None),
        ("-- a comment\n  COMMIT", [COMMIT]),
        ("-- a comment ends at a carriage return too\rCOMMIT", [COMMIT]),
        ("/* a /* nested */ comment */ COMMIT", [COMMIT]),
        ("INSERT INTO t VALUES (1); COMMIT", [None, COMMIT]),
        ("INSERT INTO t VALUES ('a;b'); commit;", [None, COMMIT]),
        ("SELECT 'it''s; COMMIT'", None),
        ("SELECT E'it\\'s; COMMIT'", None),
        ('SELECT "a;""COMMIT" FROM t', None),
        ("DO $$ BEGIN PERFORM 1; END $$; SELECT 1", None),
        ("DO $body$ BEGIN; COMMIT; END $body$", None),
        ("SELECT 1; -- COMMIT\n", None),
        ("SELECT $1; COMMIT", [None, COMMIT]),
        ("SELECT a$b$c FROM t; END", [None, COMMIT]),
        (
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END",
            None,
        ),
        ("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END; COMMIT", [None, COMMIT]),
        ("CREATE TABLE begin (x int); COMMIT", [None, COMMIT]),
        ("SELECT 1 /* ; COMMIT */", None),
        ("(SELECT 1); BEGIN", [None, BEGIN]),
    ],
)
def test_the_scanner_finds_transaction_control(sql: str, expected: list[str | None] | None) -> None:
    assert kinds(sql) == expected


def test_with_standard_conforming_strings_off_a_backslash_escapes() -> None:
    hidden = "SELECT 'a\\''; COMMIT; --'"  # with backslash escapes, the string ends before COMMIT
    assert kinds(hidden) is None
    found = control_statements(hidden, postgres=True, backslashes=True)
    assert [kind for _, _, kind in found or []] == [None, COMMIT]


def test_the_scanner_knows_sqlite() -> None:
    assert kinds("BEGIN IMMEDIATE TRANSACTION", postgres=False) == [BEGIN]
    assert kinds("END TRANSACTION", postgres=False) == [COMMIT]
    assert kinds("START TRANSACTION", postgres=False) is None  # not SQLite's: the driver refuses it
    # A trigger's body is one statement; SQLite's execute() runs only the first statement of a string.
    trigger = "CREATE TRIGGER t AFTER INSERT ON a BEGIN INSERT INTO b VALUES (1); END"
    assert kinds(trigger, postgres=False) is None
    # SQLite's block comments do not nest: what follows the first */ is a statement.
    assert kinds("/* /* */ COMMIT", postgres=False) == [COMMIT]


# -- 1. every path runs inside the transaction ---------------------------------------------------------------------


async def test_a_raw_statement_on_case_connection_is_rolled_back(database: Any) -> None:
    async with TransactionTestCase(database) as case:
        async with case.connection.cursor() as cursor:
            await cursor.execute(insert(database), ("raw",))
        assert await names() == ["raw"]
    assert await names() == []


async def test_a_first_statement_that_fails_in_the_driver_keeps_the_begin(database: Any) -> None:
    if is_mysql(database):
        pytest.skip("PyMySQL sends any object as its str(), and the BEGIN is sent alone, at entry")
    async with TransactionTestCase(database):
        with pytest.raises(peewee.PeeweeException):  # the driver cannot send an object() as a parameter
            await database.aio_execute_sql(insert(database), (object(),))
        await Author.aio_create(name="after the failure")
        assert await names() == ["after the failure"]
    assert await names() == []


async def test_a_first_statement_with_a_syntax_error_keeps_the_begin(database: Any) -> None:
    if isinstance(database, peewee_async.Psycopg3Database):
        pytest.skip("psycopg 3 sends the BEGIN alone, at entry: the error aborts the transaction, as any error does")
    async with TransactionTestCase(database):
        with pytest.raises(peewee.PeeweeException, match=r"(?i)syntax"):  # the server parses the whole string first
            await database.aio_execute_sql("SELEC 1")
        await Author.aio_create(name="after the failure")
    assert await names() == []


async def test_a_first_statement_that_fails_on_case_connection_keeps_the_begin(database: Any) -> None:
    if is_mysql(database):
        pytest.skip("PyMySQL sends any object as its str(), and the BEGIN is sent alone, at entry")
    async with TransactionTestCase(database) as case:
        async with case.connection.cursor() as cursor:
            with pytest.raises(Exception, match=r"(?i)adapt|bind|type"):
                await cursor.execute(insert(database), (object(),))
        async with case.connection.cursor() as cursor:
            await cursor.execute(insert(database), ("raw",))
    assert await names() == []


# -- 2. transaction control as SQL -----------------------------------------------------------------------------------

REFUSED = ["BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT a", "RELEASE SAVEPOINT a", "  -- x\n commit"]


@pytest.mark.parametrize("statement", REFUSED)
async def test_without_allow_transactions_sql_transaction_control_is_refused(database: Any, statement: str) -> None:
    if is_mysql(database) and statement == "END":
        pytest.skip("MySQL has no END statement")
    async with TransactionTestCase(database):
        await Author.aio_create(name="before")
        with pytest.raises(ValueError, match=r"allow_transactions.*peewee_async_allow_transactions") as raised:
            await database.aio_execute_sql(statement)
        assert isinstance(raised.value, TransactionError)
        await Author.aio_create(name="after")
        assert await names() == ["after", "before"]
    assert await names() == []


async def test_commit_then_begin_inside_a_block_keeps_nothing(database: Any) -> None:
    async with TransactionTestCase(database, allow_transactions=True):
        await Author.aio_create(name="one")
        await database.aio_execute_sql("COMMIT")
        await database.aio_execute_sql("BEGIN")
        await Author.aio_create(name="two")
        assert await names() == ["one", "two"]
    assert await names() == []


async def test_sql_transactions_map_onto_savepoints(database: Any) -> None:
    async with TransactionTestCase(database, allow_transactions=True):
        await database.aio_execute_sql("BEGIN")
        await Author.aio_create(name="rolled back")
        await database.aio_execute_sql("ROLLBACK")
        assert await names() == []
        await database.aio_execute_sql("START TRANSACTION" if not is_sqlite(database) else "BEGIN IMMEDIATE")
        await Author.aio_create(name="committed")
        await database.aio_execute_sql("SAVEPOINT mine")
        await Author.aio_create(name="undone")
        await database.aio_execute_sql("ROLLBACK TO SAVEPOINT mine")
        await database.aio_execute_sql("RELEASE SAVEPOINT mine")
        await database.aio_execute_sql("COMMIT" if is_mysql(database) else "END")
        assert await names() == ["committed"]
        await database.aio_execute_sql("COMMIT")  # none open: nothing happens, as on a connection in autocommit
    assert await names() == []


async def test_a_cursor_of_the_shared_connection_and_case_connection_are_guarded(database: Any) -> None:
    async with TransactionTestCase(database) as case:
        async with database.aio_connection() as connection, connection.cursor() as cursor:
            await cursor.execute(insert(database), ("shared",))
            with pytest.raises(TransactionError, match="COMMIT"):
                await cursor.execute("COMMIT")
        async with case.connection.cursor() as cursor:
            with pytest.raises(TransactionError, match="COMMIT"):
                await cursor.execute("commit")
        assert await names() == ["shared"]
    assert await names() == []


async def test_a_commit_inside_a_multi_statement_string_is_caught(database: Any) -> None:
    needs_postgres(database)
    async with TransactionTestCase(database):
        with pytest.raises(TransactionError, match="COMMIT"):
            await database.aio_execute_sql("INSERT INTO author (name) VALUES ('x'); COMMIT")
        assert await names() == []
    async with TransactionTestCase(database, allow_transactions=True):
        await database.aio_execute_sql("BEGIN; INSERT INTO author (name) VALUES ('x'); COMMIT; BEGIN")
        assert await names() == ["x"]
    assert await names() == []


@pytest.mark.parametrize("allow", [False, True])
async def test_peewee_async_transaction_used_directly_never_commits(database: Any, allow: bool) -> None:
    async with TransactionTestCase(database, allow_transactions=allow):
        async with database.aio_connection() as connection:
            if not allow:
                with pytest.raises(TransactionError, match="allow_transactions"):
                    await peewee_async.Transaction(connection).begin()
                return
            async with peewee_async.Transaction(connection):
                await Author.aio_create(name="app")
            transaction = peewee_async.Transaction(connection)
            await transaction.begin()
            await Author.aio_create(name="rolled back")
            await transaction.rollback()
        assert await names() == ["app"]
    assert await names() == []


async def test_prepared_transactions_are_refused_even_when_allowed(database: Any) -> None:
    needs_postgres(database)
    statement = "XA START 'x'" if is_mysql(database) else "PREPARE TRANSACTION 'x'"
    async with TransactionTestCase(database, allow_transactions=True):
        with pytest.raises(TransactionError, match=statement):
            await database.aio_execute_sql(statement)


async def test_the_driver_connection_methods_refuse_transaction_control(database: Any) -> None:
    async with TransactionTestCase(database) as case:
        await Author.aio_create(name="kept in the block")
        with pytest.raises(TransactionError, match="COMMIT"):
            await case.connection.commit()
        with pytest.raises(TransactionError, match="ROLLBACK"):
            await case.connection.rollback()
        if not is_sqlite(database) and not hasattr(case.connection.raw, "execute"):
            return  # aiopg: its connection has no execute() of its own
        with pytest.raises(TransactionError, match=r"connection\.execute"):
            case.connection.execute("COMMIT")
        if is_sqlite(database):
            with pytest.raises(TransactionError, match="executescript"):
                case.connection.executescript("INSERT INTO author (name) VALUES ('x');")
            async with case.connection.cursor() as cursor:
                with pytest.raises(TransactionError, match="executescript"):
                    await cursor.executescript("INSERT INTO author (name) VALUES ('x');")
        assert await names() == ["kept in the block"]
    assert await names() == []


async def test_psycopg_composed_sql_is_read_too(database: Any) -> None:
    if not isinstance(database, peewee_async.Psycopg3Database):
        pytest.skip("psycopg 3's composed SQL")
    from psycopg import sql

    async with TransactionTestCase(database) as case:
        await Author.aio_create(name="kept in the block")
        async with case.connection.cursor() as cursor:
            with pytest.raises(TransactionError, match="COMMIT"):
                await cursor.execute(sql.SQL("COMMIT"))
        assert await names() == ["kept in the block"]
    assert await names() == []


async def test_a_statement_sent_while_holding_a_cursor_fails_instead_of_waiting_for_itself(database: Any) -> None:
    async with TransactionTestCase(database) as case:
        async with case.connection.cursor() as cursor:
            await cursor.execute(insert(database), ("first",))
            with pytest.raises(TransactionError, match="holds a cursor of the test connection open"):
                await Author.aio_create(name="second")
        assert await names() == ["first"]
    assert await names() == []


async def test_a_commit_hidden_by_standard_conforming_strings_off_is_caught(database: Any) -> None:
    only_postgres(database, "MySQL's strings always take backslashes (tests/test_mysql.py)")
    async with TransactionTestCase(database):
        await database.aio_execute_sql("SET standard_conforming_strings = off")
        with pytest.raises(TransactionError, match="COMMIT"):
            await database.aio_execute_sql("SELECT 'a\\''; COMMIT; --'")
    assert await names() == []


async def test_a_function_with_a_sql_body_is_not_taken_for_transaction_control(database: Any) -> None:
    only_postgres(database, "a BEGIN ATOMIC body (tests/test_mysql.py has MySQL's routines)")
    async with TransactionTestCase(database):
        await database.aio_execute_sql(
            "CREATE FUNCTION pwat_f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; "
            "SELECT CASE WHEN true THEN 2 END; END; DO $$ BEGIN PERFORM pwat_f(); END $$"
        )
    found = await database.aio_execute_sql(
        "SELECT count(*) FROM pg_proc WHERE proname = 'pwat_f'", fetch_results=peewee_async.databases.fetchone
    )
    assert found[0] == 0
