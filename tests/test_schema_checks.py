"""assert_models_match_schema on every driver: no difference on the tables create_tables made, and each kind of drift
named after a deliberate change of the schema inside a test transaction (so rolled back, and read on the test's own
connection; on MySQL, where DDL commits at once, made outside one, and the tables dropped after the test);
assert_all_models_registered on packages written for the test."""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import peewee
import peewee_async
import pytest
from peewee_async.databases import fetchall
from playhouse import postgres_ext

from peewee_async_testing import (
    ConfigurationError,
    TransactionTestCase,
    assert_all_models_registered,
    assert_models_match_schema,
    bound_models,
    testdb,
)
from peewee_async_testing.catalog import pg_family
from peewee_async_testing.mysql_catalog import mysql_family, mysql_reported_default

from .helpers import is_mysql, is_sqlite
from .models import MODELS, database_proxy


class Genre(peewee_async.AioModel):  # type: ignore[misc]  # peewee-async ships no types: AioModel is Any
    name = peewee.CharField(max_length=100, unique=True)


class Shelf(peewee_async.AioModel):  # type: ignore[misc]
    genre = peewee.ForeignKeyField(Genre, on_delete="CASCADE")
    label = peewee.CharField(max_length=100)
    position = peewee.IntegerField()
    note = peewee.TextField(null=True)
    code = peewee.CharField(max_length=10, constraints=[peewee.SQL("DEFAULT 'x'")])

    class Meta:
        indexes = ((("label", "position"), False),)


class Everything(peewee_async.AioModel):  # type: ignore[misc]
    """A column of most field types, and defaults of several kinds: none of them is a difference."""

    id = peewee.BigAutoField()
    big = peewee.BigIntegerField(constraints=[peewee.SQL("DEFAULT -1")])
    small = peewee.SmallIntegerField(null=True)
    price = peewee.DecimalField(max_digits=8, decimal_places=2, constraints=[peewee.SQL("DEFAULT 0.5")])
    ratio = peewee.FloatField(null=True)
    exact = peewee.DoubleField(null=True)
    flag = peewee.BooleanField(constraints=[peewee.SQL("DEFAULT false")])
    made = peewee.DateTimeField(constraints=[peewee.SQL("DEFAULT CURRENT_TIMESTAMP")])
    day = peewee.DateField(null=True)
    hour = peewee.TimeField(null=True)
    token = peewee.UUIDField(null=True)
    data = peewee.BlobField(null=True)
    text = peewee.TextField(constraints=[peewee.SQL("DEFAULT ''")])
    word = peewee.FixedCharField(3, null=True)  # max_length


class Tagging(peewee_async.AioModel):  # type: ignore[misc]
    """A composite primary key, and an index in raw SQL (not compared: its table's other indexes are)."""

    genre = peewee.ForeignKeyField(Genre, on_delete="SET NULL", null=True)
    shelf = peewee.ForeignKeyField(Shelf)
    weight = peewee.IntegerField()

    class Meta:
        primary_key = peewee.CompositeKey("shelf", "weight")
        indexes = (peewee.SQL("CREATE INDEX tagging_lower ON tagging (weight)"),)  # unquoted: every dialect


class Unmade(peewee_async.AioModel):  # type: ignore[misc]
    """A model whose table is never created."""

    name = peewee.CharField()


class Postgres(peewee_async.AioModel):  # type: ignore[misc]
    """PostgreSQL's own types: arrays, JSON, time zones, text search (each but JSON with its GIN index)."""

    numbers = postgres_ext.ArrayField(peewee.IntegerField, null=True)
    words = postgres_ext.ArrayField(peewee.CharField, null=True)
    document = postgres_ext.BinaryJSONField(null=True)
    plain = postgres_ext.JSONField(null=True)
    moment = postgres_ext.DateTimeTZField(null=True)
    search = postgres_ext.TSVectorField(null=True)


SCHEMA: list[Any] = [Genre, Shelf, Everything, Tagging]


@pytest.fixture
async def tables(database: Any) -> AsyncIterator[Any]:
    """The database, with the tables of SCHEMA created (and committed) for the test, dropped after it; the models
    are bound to no database."""
    with database.bind_ctx(SCHEMA):
        await database.aio_create_tables(SCHEMA)
    yield database
    with database.bind_ctx(SCHEMA):
        await database.aio_drop_tables(SCHEMA)


class EnumField(peewee.Field):
    field_type = "ENUM('paper', 'cloth')"


class Binding(peewee_async.AioModel):  # type: ignore[misc]
    """MySQL's own types: an ENUM, a boolean (TINYINT(1)), a text indexed by a prefix (in raw SQL, so not compared)."""

    cover = EnumField(constraints=[peewee.SQL("DEFAULT 'paper'")])
    sewn = peewee.BooleanField(null=True)
    blurb = peewee.TextField()


def changed(database: Any) -> Any:
    """Where a test changes the schema: a test transaction, rolled back; on MySQL nothing, as DDL commits there
    (the ``tables`` fixture drops the tables after the test)."""
    return contextlib.nullcontext() if is_mysql(database) else TransactionTestCase(database)


async def execute(database: Any, sql: str) -> None:
    """Run ``sql``, its identifiers quoted in double quotes, or in MySQL's backticks."""
    await database.aio_execute_sql(sql.replace('"', "`") if is_mysql(database) else sql)


async def drop_index(database: Any, table: str, name: str) -> None:
    """Drop the index ``name`` (MySQL names its table too)."""
    await execute(database, f'DROP INDEX "{name}"' + (f' ON "{table}"' if is_mysql(database) else ""))


async def drop_foreign_key(database: Any, table: str, name: str) -> None:
    """Drop the foreign key ``name`` of ``table``, as PostgreSQL names it (``shelf_genre_id_fkey``); MySQL's are
    ``shelf_ibfk_1`` and so on, numbered in the order of the columns of the model."""
    if is_mysql(database):
        name = {"shelf_genre_id_fkey": "shelf_ibfk_1", "tagging_genre_id_fkey": "tagging_ibfk_1"}.get(name, name)
        name = {"tagging_shelf_id_fkey": "tagging_ibfk_2"}.get(name, name)
    await execute(database, f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')


async def rebuild(database: Any, table: str, old: str, new: str) -> None:
    """Make SQLite's ``table`` again with ``old`` replaced by ``new`` in its ``CREATE TABLE``, and its indexes:
    SQLite cannot alter a column or a foreign key (the tables of these tests are empty: no rows to copy)."""
    ddl = [
        sql
        for (sql,) in await database.aio_execute_sql(
            "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL ORDER BY type = 'index'",
            (table,),
            fetch_results=fetchall,
        )
    ]
    assert old in ddl[0], ddl[0]
    await execute(database, f'DROP TABLE "{table}"')
    for sql in [ddl[0].replace(old, new), *ddl[1:]]:
        await execute(database, sql)


async def differences(database: Any, models: list[Any] | None = None) -> list[str]:
    """The lines of assert_models_match_schema's failure (after its first, the summary); [] when it passes."""
    try:
        await assert_models_match_schema(database, SCHEMA if models is None else models)
    except AssertionError as failure:
        return [line.strip() for line in str(failure).splitlines()[1:]]
    return []


async def test_the_tables_create_tables_made_match(tables: Any) -> None:
    assert await differences(tables) == []
    async with TransactionTestCase(tables):
        assert await differences(tables) == []
    await assert_models_match_schema(database_proxy, MODELS)  # through a proxy, the models of the session


async def test_postgresql_types_are_of_their_family(tables: Any) -> None:
    if is_sqlite(tables) or is_mysql(tables):
        pytest.skip("PostgreSQL's own types")
    assert pg_family("INT GENERATED BY DEFAULT AS IDENTITY") == pg_family("SERIAL") == "integer auto"
    async with TransactionTestCase(tables):
        with tables.bind_ctx([Postgres]):
            await tables.aio_create_tables([Postgres])
        assert await differences(tables, [Postgres]) == []
        await execute(tables, 'ALTER TABLE "postgres" ALTER COLUMN "words" TYPE TEXT[]')
        assert await differences(tables, [Postgres]) == [
            'postgres: column "words" is VARCHAR(255)[] NULL in the models, TEXT[] NULL in the database'
        ]


def test_mysql_types_are_of_their_family() -> None:
    assert mysql_family("INTEGER AUTO_INCREMENT") == mysql_family("int(11)", auto=True) == "int auto"
    assert mysql_family("SERIAL") == mysql_family("bigint(20) unsigned", auto=True) == "bigint unsigned auto"
    assert mysql_family("BOOL") == mysql_family("tinyint(1)") == "tinyint(1)"
    assert mysql_family("TINYINT") == mysql_family("tinyint(4)") == "tinyint"  # not a boolean
    assert mysql_family("NUMERIC(8, 2)") == mysql_family("decimal(8,2)") == "decimal(8,2)"
    assert mysql_family("DECIMAL") == mysql_family("decimal(10,0)")
    assert mysql_family("DOUBLE PRECISION") == mysql_family("REAL") == mysql_family("FLOAT(30)") == "double"
    assert mysql_family("CHARACTER VARYING(40)") == mysql_family("varchar(40)") == "varchar(40)"
    assert mysql_family("ENUM('Paper', 'cloth')") == "enum('Paper','cloth')" != mysql_family("enum('paper','cloth')")
    assert mysql_family("JSON") == mysql_family("longtext")  # MariaDB's JSON is a LONGTEXT


def test_mysql_8_defaults_are_read_as_mariadb_spells_them() -> None:
    """MySQL 8 reports a literal default unquoted, an expression with DEFAULT_GENERATED; MariaDB as SQL text."""

    def read(
        default: str | None, extra: str = "", kind: str = "varchar", mariadb: bool = False, null: bool = True
    ) -> Any:
        return mysql_reported_default(default, extra=extra, kind=kind, mariadb=mariadb, null=null)

    assert read("it's") == "'it''s'"
    assert read("-1", kind="bigint") == "-1"
    assert read("CURRENT_TIMESTAMP", extra="DEFAULT_GENERATED") == "CURRENT_TIMESTAMP"
    assert read(None) is None
    assert read("'x'", mariadb=True) == "'x'"
    assert read("NULL", mariadb=True) is None  # a nullable column without a default
    assert read("NULL", mariadb=True, null=False) == "NULL"


async def test_mysql_enums_booleans_and_prefix_indexes_are_compared(tables: Any) -> None:
    if not is_mysql(tables):
        pytest.skip("MySQL's own types")
    with tables.bind_ctx([Binding]):
        await tables.aio_create_tables([Binding])
    try:
        assert await differences(tables, [Binding]) == []
        await execute(
            tables, """ALTER TABLE "binding" MODIFY "cover" ENUM('paper', 'cloth', 'board') DEFAULT 'paper'"""
        )
        await execute(tables, 'ALTER TABLE "binding" MODIFY "sewn" TINYINT')  # a small number, no longer a boolean
        await execute(tables, 'CREATE INDEX "binding_blurb" ON "binding" ("blurb"(10))')
        assert await differences(tables, [Binding]) == [
            """binding: column "cover" is ENUM('paper', 'cloth') NOT NULL DEFAULT 'paper' in the models, """
            """ENUM('paper','cloth','board') NULL DEFAULT 'paper' in the database""",
            'binding: column "sewn" is BOOL NULL in the models, TINYINT(4) NULL in the database',
            "binding: index (blurb(10)) not in the models",
        ]
    finally:
        await execute(tables, 'DROP TABLE "binding"')


async def test_mysql_spells_defaults_its_own_way(tables: Any) -> None:
    """MariaDB reports CURRENT_TIMESTAMP as current_timestamp(), false as 0 and 0.5 of a DECIMAL(8,2) as 0.50: the
    same defaults (test_the_tables_create_tables_made_match); another value is still a difference."""
    if not is_mysql(tables):
        pytest.skip("MySQL's spelling of defaults")
    await execute(tables, 'ALTER TABLE "everything" ALTER COLUMN "flag" SET DEFAULT 1')
    await execute(tables, 'ALTER TABLE "everything" ALTER COLUMN "price" SET DEFAULT 0.05')
    await execute(tables, 'ALTER TABLE "everything" MODIFY "made" DATETIME NOT NULL DEFAULT \'2020-01-01\'')
    assert await differences(tables, [Everything]) == [
        'everything: column "price" is NUMERIC(8, 2) NOT NULL DEFAULT 0.5 in the models, DECIMAL(8,2) NOT NULL '
        "DEFAULT 0.05 in the database",
        'everything: column "flag" is BOOL NOT NULL DEFAULT false in the models, TINYINT(1) NOT NULL DEFAULT 1 in '
        "the database",
        'everything: column "made" is DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP in the models, DATETIME NOT NULL '
        "DEFAULT '2020-01-01 00:00:00' in the database",
    ]


async def test_a_mysql_schema_is_a_database_of_the_server(tables: Any) -> None:
    if not is_mysql(tables):
        pytest.skip("MySQL's schemas are its databases")

    class Here(Genre):
        class Meta:
            table_name, schema = "genre", tables.database

    class Elsewhere(Genre):
        class Meta:
            table_name, schema = "genre", "no_such_database"

    assert await differences(tables, [Here, Elsewhere]) == ["no_such_database.genre: table missing"]


async def test_the_types_and_quoting_come_from_the_database_given_not_the_models(tables: Any) -> None:
    other = peewee.SqliteDatabase(":memory:") if not is_sqlite(tables) else peewee.PostgresqlDatabase("nowhere")
    with other.bind_ctx(SCHEMA):  # rendered for `other`, SERIAL would be INTEGER (or the other way round)
        assert await differences(tables) == []


async def test_a_dropped_column_is_missing(tables: Any) -> None:
    async with changed(tables):
        await execute(tables, 'ALTER TABLE "shelf" DROP COLUMN "note"')
        assert await differences(tables) == ['shelf: column "note" missing (TEXT NULL in the models)']
    if not is_mysql(tables):
        assert await differences(tables) == []  # rolled back


async def test_an_added_column_is_not_in_the_models(tables: Any) -> None:
    async with changed(tables):
        await execute(tables, 'ALTER TABLE "shelf" ADD COLUMN "isbn" TEXT')
        assert await differences(tables) == ['shelf: column "isbn" not in the models (TEXT NULL in the database)']


async def test_a_column_of_another_type_is_named(tables: Any) -> None:
    async with changed(tables):
        found = "TEXT"
        if is_sqlite(tables):
            await rebuild(tables, "shelf", '"label" VARCHAR(100)', '"label" TEXT')
        elif is_mysql(tables):  # not TEXT: MySQL indexes a TEXT only by a prefix
            await execute(tables, 'ALTER TABLE "shelf" MODIFY "label" CHAR(100) NOT NULL')
            found = "CHAR(100)"
        else:
            await execute(tables, 'ALTER TABLE "shelf" ALTER COLUMN "label" TYPE TEXT')
        assert await differences(tables) == [
            f'shelf: column "label" is VARCHAR(100) NOT NULL in the models, {found} NOT NULL in the database'
        ]


async def test_a_longer_varchar_is_another_type(tables: Any) -> None:
    async with changed(tables):
        if is_sqlite(tables):
            await rebuild(tables, "genre", '"name" VARCHAR(100)', '"name" VARCHAR(200)')
        elif is_mysql(tables):
            await execute(tables, 'ALTER TABLE "genre" MODIFY "name" VARCHAR(200) NOT NULL')
        else:
            await execute(tables, 'ALTER TABLE "genre" ALTER COLUMN "name" TYPE VARCHAR(200)')
        found = "CHARACTER VARYING(200)" if not is_sqlite(tables) and not is_mysql(tables) else "VARCHAR(200)"
        assert await differences(tables) == [
            f'genre: column "name" is VARCHAR(100) NOT NULL in the models, {found} NOT NULL in the database'
        ]


async def test_a_column_made_not_null_is_named(tables: Any) -> None:
    async with changed(tables):
        if is_sqlite(tables):
            await rebuild(tables, "shelf", '"note" TEXT', '"note" TEXT NOT NULL')
        elif is_mysql(tables):
            await execute(tables, 'ALTER TABLE "shelf" MODIFY "note" TEXT NOT NULL')
        else:
            await execute(tables, 'ALTER TABLE "shelf" ALTER COLUMN "note" SET NOT NULL')
        assert await differences(tables) == [
            'shelf: column "note" is TEXT NULL in the models, TEXT NOT NULL in the database'
        ]


async def test_a_changed_default_is_named(tables: Any) -> None:
    async with changed(tables):
        if is_sqlite(tables) or is_mysql(tables):
            if is_sqlite(tables):
                await rebuild(tables, "shelf", "DEFAULT 'x'", "DEFAULT 'y'")
            else:
                await execute(tables, """ALTER TABLE "shelf" ALTER COLUMN "code" SET DEFAULT 'y'""")
            found = "VARCHAR(10) NOT NULL DEFAULT 'y'"
        else:
            await execute(tables, """ALTER TABLE "shelf" ALTER COLUMN "code" SET DEFAULT 'y'""")
            found = "CHARACTER VARYING(10) NOT NULL DEFAULT 'y'::character varying"
        assert await differences(tables) == [
            f"""shelf: column "code" is VARCHAR(10) NOT NULL DEFAULT 'x' in the models, {found} in the database"""
        ]


async def test_a_dropped_default_is_named(tables: Any) -> None:
    async with changed(tables):
        if is_sqlite(tables):
            await rebuild(tables, "everything", " DEFAULT -1", "")
        else:
            await execute(tables, 'ALTER TABLE "everything" ALTER COLUMN "big" DROP DEFAULT')
        big = "INTEGER" if is_sqlite(tables) else "BIGINT"
        found = "BIGINT(20)" if is_mysql(tables) else big  # MySQL reports the display width
        assert await differences(tables) == [
            f'everything: column "big" is {big} NOT NULL DEFAULT -1 in the models, {found} NOT NULL (no default) in '
            "the database"
        ]


async def test_a_lost_primary_key_is_named(tables: Any) -> None:
    if is_mysql(tables):  # an AUTO_INCREMENT column must stay a key: a unique one will do
        await execute(tables, 'ALTER TABLE "genre" DROP PRIMARY KEY, ADD UNIQUE INDEX "genre_id_key" ("id")')
        assert await differences(tables, [Genre]) == [
            'genre: column "id" is INTEGER AUTO_INCREMENT NOT NULL PRIMARY KEY in the models, INT(11) AUTO_INCREMENT '
            "NOT NULL in the database",
            "genre: unique index (id) not in the models",
        ]
        return
    async with TransactionTestCase(tables):
        if is_sqlite(tables):
            await rebuild(tables, "genre", '"id" INTEGER NOT NULL PRIMARY KEY', '"id" INTEGER NOT NULL')
            models, found = "INTEGER NOT NULL PRIMARY KEY", "INTEGER NOT NULL"
        else:
            await execute(tables, 'ALTER TABLE "tagging" DROP CONSTRAINT "tagging_shelf_id_fkey"')
            await execute(tables, 'ALTER TABLE "tagging" DROP CONSTRAINT "tagging_genre_id_fkey"')
            await execute(tables, 'ALTER TABLE "shelf" DROP CONSTRAINT "shelf_genre_id_fkey"')
            await execute(tables, 'ALTER TABLE "genre" DROP CONSTRAINT "genre_pkey"')
            models, found = "SERIAL NOT NULL PRIMARY KEY", "SERIAL NOT NULL"
        lines = await differences(tables, [Genre])
        assert lines == [f'genre: column "id" is {models} in the models, {found} in the database']


async def test_a_serial_without_its_sequence_is_named(tables: Any) -> None:
    if is_sqlite(tables):
        pytest.skip("SQLite's INTEGER PRIMARY KEY is the rowid: no sequence to lose")
    if is_mysql(tables):
        await execute(tables, 'ALTER TABLE "genre" MODIFY "id" INTEGER NOT NULL')  # no longer AUTO_INCREMENT
        assert await differences(tables) == [
            'genre: column "id" is INTEGER AUTO_INCREMENT NOT NULL PRIMARY KEY in the models, INT(11) NOT NULL '
            "PRIMARY KEY in the database"
        ]
        return
    async with TransactionTestCase(tables):
        await execute(tables, 'ALTER TABLE "genre" ALTER COLUMN "id" DROP DEFAULT')
        assert await differences(tables) == [
            'genre: column "id" is SERIAL NOT NULL PRIMARY KEY in the models, INTEGER NOT NULL PRIMARY KEY in the '
            "database"
        ]


async def test_a_primary_key_made_otherwise_is_the_same(tables: Any) -> None:
    """SQLite: an INTEGER PRIMARY KEY declared without NOT NULL is the rowid, never NULL; PostgreSQL: an identity
    column is what a SERIAL is."""
    if is_mysql(tables):
        pytest.skip("MySQL has one way to make an AUTO_INCREMENT primary key")
    async with TransactionTestCase(tables):
        if is_sqlite(tables):
            await rebuild(tables, "genre", '"id" INTEGER NOT NULL PRIMARY KEY', '"id" INTEGER PRIMARY KEY')
        else:
            await execute(tables, 'ALTER TABLE "genre" ALTER COLUMN "id" DROP DEFAULT')
            await execute(tables, 'ALTER TABLE "genre" ALTER COLUMN "id" ADD GENERATED BY DEFAULT AS IDENTITY')
        assert await differences(tables) == []


async def test_a_dropped_index_is_missing(tables: Any) -> None:
    async with changed(tables):
        await drop_index(tables, "shelf", "shelf_label_position")
        assert await differences(tables) == ["shelf: index (label, position) missing"]


async def test_an_added_unique_index_is_not_in_the_models(tables: Any) -> None:
    async with changed(tables):
        await execute(tables, 'CREATE UNIQUE INDEX "shelf_code" ON "shelf" ("code")')
        assert await differences(tables) == ["shelf: unique index (code) not in the models"]


async def test_an_index_no_longer_unique_is_named(tables: Any) -> None:
    async with changed(tables):
        await drop_index(tables, "genre", "genre_name")
        await execute(tables, 'CREATE INDEX "genre_name" ON "genre" ("name")')
        assert await differences(tables) == ["genre: index (name) is unique in the models, not unique in the database"]


async def test_indexes_are_matched_by_their_columns_not_their_names(tables: Any) -> None:
    async with changed(tables):
        await drop_index(tables, "shelf", "shelf_label_position")
        await execute(tables, 'CREATE INDEX "another_name" ON "shelf" ("label", "position")')
        assert await differences(tables) == []
        await drop_index(tables, "shelf", "another_name")
        await execute(tables, 'CREATE INDEX "shelf_label_position" ON "shelf" ("position", "label")')
        assert await differences(tables) == [
            "shelf: index (label, position) missing",
            "shelf: index (position, label) not in the models",
        ]


async def test_an_index_of_a_table_with_a_raw_sql_index_is_not_reported_extra(tables: Any) -> None:
    async with changed(tables):
        await execute(tables, 'CREATE INDEX "tagging_more" ON "tagging" ("genre_id", "weight")')
        if not is_mysql(tables):  # MariaDB indexes no expression
            await execute(tables, 'CREATE INDEX "tagging_lower_weight" ON "tagging" ((weight + 1))')
        assert await differences(tables) == []
        await drop_index(tables, "tagging", "tagging_genre_id")
        assert await differences(tables) == ["tagging: index (genre_id) missing"]


async def test_a_foreign_key_with_another_on_delete_is_named(tables: Any) -> None:
    async with changed(tables):
        if is_sqlite(tables):
            await rebuild(tables, "shelf", 'REFERENCES "genre" ("id") ON DELETE CASCADE', 'REFERENCES "genre" ("id")')
        else:  # MySQL: no ON DELETE is RESTRICT, compared as NO ACTION
            await drop_foreign_key(tables, "shelf", "shelf_genre_id_fkey")
            await execute(tables, 'ALTER TABLE "shelf" ADD FOREIGN KEY ("genre_id") REFERENCES "genre" ("id")')
        assert await differences(tables) == [
            "shelf: foreign key genre_id -> genre(id) ON DELETE CASCADE in the models, ON DELETE NO ACTION in the "
            "database"
        ]


async def test_a_dropped_and_an_added_foreign_key_are_named(tables: Any) -> None:
    async with changed(tables):
        if is_sqlite(tables):
            await rebuild(tables, "shelf", ', FOREIGN KEY ("genre_id") REFERENCES "genre" ("id") ON DELETE CASCADE', "")
            await rebuild(tables, "everything", '"big" INTEGER', '"big" INTEGER REFERENCES "genre" ("id")')
        else:
            await drop_foreign_key(tables, "shelf", "shelf_genre_id_fkey")
        if is_mysql(tables):  # on a column of the type of genre.id; MySQL indexes it by itself, not reported
            await execute(tables, 'ALTER TABLE "shelf" ADD FOREIGN KEY ("position") REFERENCES "genre" ("id")')
            assert await differences(tables) == [
                "shelf: foreign key genre_id -> genre(id) ON DELETE CASCADE missing",
                "shelf: foreign key position -> genre(id) ON DELETE NO ACTION not in the models",
            ]
            return
        if not is_sqlite(tables):
            await execute(tables, 'ALTER TABLE "everything" ADD FOREIGN KEY ("big") REFERENCES "genre" ("id")')
        assert await differences(tables) == [
            "everything: foreign key big -> genre(id) ON DELETE NO ACTION not in the models",
            "shelf: foreign key genre_id -> genre(id) ON DELETE CASCADE missing",
        ]


async def test_a_foreign_key_to_a_primary_key_left_unnamed_is_the_same(tables: Any) -> None:
    if not is_sqlite(tables):
        pytest.skip("PostgreSQL and MySQL name the referenced columns whatever the DDL said")
    async with TransactionTestCase(tables):
        await rebuild(tables, "shelf", 'REFERENCES "genre" ("id")', 'REFERENCES "genre"')
        assert await differences(tables) == []


async def test_a_foreign_key_to_another_table_is_named(tables: Any) -> None:
    other = "genre" if is_mysql(tables) else "everything"  # MySQL: a target of the column's type (INT)
    async with changed(tables):
        if is_sqlite(tables):
            await rebuild(tables, "tagging", 'REFERENCES "shelf" ("id")', 'REFERENCES "everything" ("id")')
        else:
            await drop_foreign_key(tables, "tagging", "tagging_shelf_id_fkey")
            await execute(tables, f'ALTER TABLE "tagging" ADD FOREIGN KEY ("shelf_id") REFERENCES "{other}" ("id")')
        assert await differences(tables) == [
            "tagging: foreign key shelf_id -> shelf(id) ON DELETE NO ACTION in the models, "
            f"shelf_id -> {other}(id) ON DELETE NO ACTION in the database"
        ]


async def test_a_missing_table_is_named_and_the_summary_says_what_was_compared(tables: Any) -> None:
    async with changed(tables):
        await execute(tables, 'DROP TABLE "tagging"')
        with pytest.raises(AssertionError) as failure:
            await assert_models_match_schema(tables, [Unmade, *SCHEMA])
    assert str(failure.value).splitlines() == [
        f"The schema of the peewee_async.{type(tables).__name__} {tables.database!r} differs from the models: 2"
        " differences in 2 of the 5 tables compared.",
        "  tagging: table missing",
        "  unmade: table missing",
    ]
    assert "password" not in str(failure.value)


async def test_tables_no_model_has_are_not_compared(tables: Any) -> None:
    async with changed(tables):
        await execute(tables, 'CREATE TABLE "migratehistory" ("id" INTEGER PRIMARY KEY, "name" TEXT)')
        try:
            assert await differences(tables) == []
        finally:
            if is_mysql(tables):  # committed: no rollback drops it
                await execute(tables, 'DROP TABLE "migratehistory"')


async def test_by_default_the_models_bound_to_the_database_are_compared(tables: Any) -> None:
    scratch = type(tables)(tables.database, **tables.connect_params)  # another object, on the same database
    proxy = peewee.DatabaseProxy()
    proxy.initialize(scratch)
    try:
        with scratch.bind_ctx(SCHEMA):
            await assert_models_match_schema(scratch)
            await assert_models_match_schema(proxy)
        with scratch.bind_ctx([*SCHEMA, Unmade]), pytest.raises(AssertionError) as failure:
            await assert_models_match_schema(proxy)
        assert str(failure.value).splitlines()[1:] == ["  unmade: table missing"]
        with pytest.raises(ConfigurationError, match="none is bound to the database"):
            await assert_models_match_schema(scratch)
    finally:
        await scratch.aio_close()


async def test_bad_arguments_are_refused(tables: Any) -> None:
    with pytest.raises(ConfigurationError, match="it was given none"):
        await assert_models_match_schema(tables, [])
    with pytest.raises(TypeError, match="takes peewee model classes"):
        await assert_models_match_schema(tables, ["genre"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="needs a peewee-async database"):
        await assert_models_match_schema(None, SCHEMA)


# -- assert_all_models_registered ----------------------------------------------------------------------------------

BASE = """
import peewee
import peewee_async

database = peewee_async.SqliteDatabase(":memory:")


class Base(peewee_async.AioModel):
    class Meta:
        database = database


class Unbound(peewee.Model):
    '''No database: no table, not counted.'''
"""
AUTHOR = """
from {package} import Base
from {outside} import Elsewhere  # defined outside the package: not counted


class Author(Base):
    name = peewee.CharField()
""".replace("from {package}", "import peewee\nfrom {package}")
GENRE = """
from {package} import Base


class Genre(Base):
    pass


class Tag(Base):
    class Meta:
        table_name = "tags"
"""
OUTSIDE = """
import peewee


class Elsewhere(peewee.Model):
    class Meta:
        database = peewee.SqliteDatabase(":memory:")
"""


@pytest.fixture
def package(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A package written for the test (its name, its folder): ``<name>.models.author`` is imported by
    ``<name>.models``, ``<name>.models.genre`` by nothing; removed from sys.path and sys.modules after."""
    name = f"registered_{uuid.uuid4().hex[:8]}"
    outside = f"{name}_outside"
    root = tmp_path / name
    (root / "models").mkdir(parents=True)
    (root / "__init__.py").write_text(BASE)
    (root / "models" / "__init__.py").write_text(f"from {name}.models import author\n")
    (root / "models" / "author.py").write_text(AUTHOR.format(package=name, outside=outside))
    (root / "models" / "genre.py").write_text(GENRE.format(package=name))
    (tmp_path / f"{outside}.py").write_text(OUTSIDE)
    sys.path.insert(0, str(tmp_path))
    try:
        yield name, root
    finally:
        sys.path.remove(str(tmp_path))
        for module in [module for module in sys.modules if module == outside or module.split(".")[0] == name]:
            del sys.modules[module]


def created(name: str) -> list[type[peewee.Model]]:
    """What the plugin would build the test database for, once the package's ``models`` is imported: the models
    bound to its database (Base and Author)."""
    __import__(f"{name}.models")
    return bound_models(sys.modules[name].database)


def test_a_model_module_nothing_imports_is_named(package: tuple[str, Path]) -> None:
    name, _ = package
    models = created(name)
    assert {model.__name__ for model in models} == {"Base", "Author"}
    with pytest.raises(AssertionError) as failure:
        assert_all_models_registered(name, models)
    assert str(failure.value).splitlines() == [
        f"2 models defined under {name} not among the 2 models given:",
        f'  {name}.models.genre.Genre (table "genre")',
        f'  {name}.models.genre.Tag (table "tags")',
        f"Nothing the plugin imports imports the module {name}.models.genre, so the test database was built without"
        " them: add the module to the `peewee_async_models` ini list, or import it from the database's module.",
    ]
    genre = sys.modules[f"{name}.models.genre"]
    assert_all_models_registered(sys.modules[name], [*models, genre.Genre, genre.Tag])  # a module object too


def test_a_module_that_fails_to_import_is_named(package: tuple[str, Path]) -> None:
    name, root = package
    (root / "models" / "broken.py").write_text("import no_such_module_here\n")
    (root / "bad").mkdir()
    (root / "bad" / "__init__.py").write_text("raise RuntimeError('boom')\n")
    (root / "bad" / "never.py").write_text("raise RuntimeError('not walked into')\n")
    with pytest.raises(AssertionError) as failure:
        assert_all_models_registered(name, [Genre])
    lines = str(failure.value).splitlines()
    assert lines[:3] == [
        f"2 modules under {name} failed to import:",
        f"  {name}.bad: RuntimeError: boom",
        f"  {name}.models.broken: ModuleNotFoundError: No module named 'no_such_module_here'",
    ]
    assert lines[3] == f"4 models defined under {name} not among the 1 model given:"


def test_by_default_the_models_the_plugin_created_are_compared(
    package: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, _ = package
    models = created(name)
    monkeypatch.setattr(testdb, "CREATED_MODELS", [])
    with pytest.raises(ConfigurationError, match="Pass models="):
        assert_all_models_registered(name)
    monkeypatch.setattr(testdb, "CREATED_MODELS", models)  # read at the call, not at import
    with pytest.raises(AssertionError, match=r"genre\.Genre"):
        assert_all_models_registered(name)


def test_a_missing_package_and_a_wrong_argument_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="no module named 'no_such_package_here'"):
        assert_all_models_registered("no_such_package_here", [Genre])
    with pytest.raises(TypeError, match="a module or a dotted name"):
        assert_all_models_registered(Genre, [Genre])  # type: ignore[arg-type]
