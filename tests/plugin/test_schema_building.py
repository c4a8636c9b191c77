"""How the test database is built: the models' tables, peewee-migrate migrations, the user's hook, SQL
files first; seed data written once, seen, protected and put back; ``--peewee-reuse-db`` rebuilding on each
change of what the build depends on."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

import pytest

from peewee_async_testing import PostgresServer

from ..helpers import admin
from .project import CONFIGURED, make_ini

#: The inner project's ini lines, with every test isolated.
ISOLATED = CONFIGURED + "peewee_async_autouse = true\n"
SQLITE_DB = "import peewee_async\n\ndatabase = peewee_async.SqliteDatabase('app.db')\n"


def use(inner: pytest.Pytester, backend: str) -> None:
    """Give the inner app a database of ``backend``: aiopg's (as it has), psycopg 3's or SQLite's."""
    db = inner.path / "app" / "db.py"
    if backend == "sqlite":
        db.write_text(SQLITE_DB)
    elif backend == "psycopg":
        db.write_text(db.read_text().replace("PostgresqlDatabase(", "Psycopg3Database("))


#: Note and Comment as the models declare them, plus what no model declares: a trigger that upper-cases a note's
#: text (its function comes from the SQL file) and a view.
MIGRATION = """
def migrate(migrator, database, *, fake=False):
    migrator.sql("CREATE TABLE note (id SERIAL PRIMARY KEY, text VARCHAR(255) NOT NULL UNIQUE)")
    migrator.sql(
        "CREATE TABLE comment (id SERIAL PRIMARY KEY, note_id INTEGER NOT NULL REFERENCES note (id))"
    )
    migrator.sql("CREATE INDEX comment_note_id ON comment (note_id)")
    migrator.sql("CREATE TRIGGER note_shout BEFORE INSERT ON note FOR EACH ROW EXECUTE FUNCTION shout()")
    migrator.sql("CREATE VIEW note_texts AS SELECT text FROM note")


def rollback(migrator, database, *, fake=False):
    migrator.sql("DROP VIEW note_texts; DROP TABLE comment; DROP TABLE note")
"""
SHOUT = """
CREATE EXTENSION IF NOT EXISTS citext;
CREATE FUNCTION shout() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.text := upper(NEW.text); RETURN NEW; END $$;
"""
#: A second migration declaring its model with peewee-migrate's migrator, as generated migrations do.
MODEL_MIGRATION = """
import peewee as pw


def migrate(migrator, database, *, fake=False):
    @migrator.create_model
    class Tag(pw.Model):
        name = pw.CharField(max_length=50)

        class Meta:
            table_name = "tag"
"""
#: The tests of a project built by MIGRATION and SHOUT.
MIGRATED_TESTS = """
from app.db import database
from app.models import Note
from peewee_async.databases import fetchall
from peewee_async_testing.cleanup import bound_models

async def test_built_by_the_migrations():
    await Note.aio_create(text="quiet")
    assert [note.text for note in await Note.select().aio_execute()] == ["QUIET"]  # the trigger
    assert await database.aio_execute_sql("SELECT text FROM note_texts", fetch_results=fetchall)  # the view
    assert await database.aio_execute_sql("SELECT 1 WHERE 'a'::citext = 'A'", fetch_results=fetchall)  # the extension

def test_only_the_apps_models_are_bound():
    assert sorted(model.__name__ for model in bound_models(database)) == ["Comment", "Note"]
"""
MIGRATED = ISOLATED + "peewee_async_migrations = migrations\npeewee_async_sql = schema/shout.sql\n"


def migrated(inner: pytest.Pytester, ini: str = MIGRATED) -> pytest.Pytester:
    """The inner project, built by MIGRATION after SHOUT."""
    inner.mkdir("migrations").joinpath("001_initial.py").write_text(MIGRATION)
    inner.mkdir("schema").joinpath("shout.sql").write_text(SHOUT)
    make_ini(inner, ini)
    return inner


@pytest.mark.parametrize(
    ("backend", "xdist"), [("aiopg", []), ("psycopg", []), ("aiopg", ["-n", "2"])], ids=["aiopg", "psycopg", "xdist"]
)
def test_migrations_build_the_test_database_after_the_sql_files(
    inner: pytest.Pytester, backend: str, xdist: list[str]
) -> None:
    use(inner, backend)
    migrated(inner).makepyfile(MIGRATED_TESTS)
    inner.path.joinpath("migrations", "002_tag.py").write_text(MODEL_MIGRATION)
    inner.runpytest_subprocess(*xdist).assert_outcomes(passed=2)


def test_no_migrations_builds_from_the_models_and_migrations_switches_back(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrated(inner)
    monkeypatch.setenv("PYTEST_ADDOPTS", "--peewee-no-migrations")
    inner.makepyfile(
        """
        from app.models import Note

        async def test_built_from_the_models():
            await Note.aio_create(text="quiet")
            assert (await Note.aio_get()).text == "quiet"  # no trigger
        """
    )
    inner.runpytest().assert_outcomes(passed=1)
    inner.runpytest("--peewee-migrations").assert_outcomes(failed=1)  # the trigger is back


SETUP_HOOK = """
from app.models import Comment, Note

def pytest_peewee_async_setup_database(database):
    database.create_tables([Note, Comment])
    database.execute_sql("CREATE VIEW note_texts AS SELECT text FROM note")
"""


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_a_setup_hook_builds_the_test_database_instead_of_the_models(inner: pytest.Pytester, backend: str) -> None:
    make_ini(inner, ISOLATED)
    use(inner, backend)
    inner.makeconftest(SETUP_HOOK)
    inner.makepyfile(
        """
        from app.db import database
        from app.models import Note
        from peewee_async.databases import fetchall

        async def test_built_by_the_hook():
            await Note.aio_create(text="seen")
            assert await database.aio_execute_sql("SELECT text FROM note_texts", fetch_results=fetchall)
        """
    )
    inner.runpytest("-n", "2").assert_outcomes(passed=1)


def test_sqlite_runs_the_sql_files_as_scripts(inner: pytest.Pytester) -> None:
    inner.path.joinpath("app", "db.py").write_text(SQLITE_DB)
    inner.mkdir("schema").joinpath("lookup.sql").write_text(
        "CREATE TABLE lookup (code TEXT PRIMARY KEY);\nINSERT INTO lookup VALUES ('a'), ('b');\n"
    )
    make_ini(inner, ISOLATED + "peewee_async_sql = schema/lookup.sql\n")
    inner.makepyfile(
        """
        from app.db import database
        from peewee_async.databases import fetchall

        async def test_the_script_ran():
            assert len(await database.aio_execute_sql("SELECT code FROM lookup", fetch_results=fetchall)) == 2
        """
    )
    inner.runpytest().assert_outcomes(passed=1)


MISTAKES = {
    "missing folder": (
        ISOLATED + "peewee_async_migrations = nowhere\n",
        "*The migrations folder *nowhere* does not exist (peewee_async_migrations*",
    ),
    "folder without migrations": (
        ISOLATED + "peewee_async_migrations = schema\n",
        "*The migrations folder *schema* holds no migration (files named like 001_initial.py)*",
    ),
    "missing SQL file": (
        ISOLATED + "peewee_async_sql = schema/none.sql\n",
        "*peewee_async_sql names files that do not exist: *none.sql*",
    ),
    "failing SQL file": (
        ISOLATED + "peewee_async_sql = schema/shout.sql schema/broken.sql\n",
        '*The SQL file *broken.sql failed on the test database: *syntax error at or near ";"*',
    ),
    "failing migration": (
        ISOLATED + "peewee_async_migrations = migrations\npeewee_async_sql = schema/shout.sql\n",
        "*peewee-migrate failed applying 002_broken (*migrations): *relation* does not exist*",
    ),
    "migrations and a hook": (
        MIGRATED,
        "*Both peewee_async_migrations and a pytest_peewee_async_setup_database hook (*conftest.py) would build*",
    ),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_a_build_that_cannot_be_done_is_said_once_and_leaves_nothing(
    inner: pytest.Pytester, pg_server: PostgresServer, mistake: str
) -> None:
    ini, pattern = MISTAKES[mistake]
    migrated(inner, ini)
    inner.path.joinpath("schema", "broken.sql").write_text("CREATE TABLE;")
    inner.path.joinpath("migrations", "002_broken.py").write_text(
        'def migrate(migrator, database, *, fake=False):\n    migrator.sql("ALTER TABLE nowhere ADD x INT")\n'
    )
    if mistake == "migrations and a hook":
        inner.makeconftest(SETUP_HOOK)
    inner.makepyfile("async def test_x():\n    pass\n")
    result = inner.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    said_lines = [line for line in result.stdout.lines + result.stderr.lines if fnmatch.fnmatch(line, pattern)]
    assert len(said_lines) == 1, result.stdout.str() + result.stderr.str()
    # (the app_database fixture checks that no test database was left behind)


SEED = """
import os
from app.models import Note

def pytest_peewee_async_seed_database(database):
    with open(os.path.join({folder!r}, "seeded-" + str(os.getpid())), "w"):
        pass
    Note.insert_many([{{"text": "alpha"}}, {{"text": "beta"}}]).execute()
"""
SEED_TESTS = """
import pytest
from app.db import database
from app.models import Comment, Note

async def texts():
    return sorted(note.text for note in await Note.select().aio_execute())

async def test_sees_the_seed_data_and_changes_it():
    assert await texts() == ["alpha", "beta"]
    await Note.update(text="changed").where(Note.text == "alpha").aio_execute()
    await Note.aio_create(text="new")

async def test_its_changes_were_undone():
    assert await texts() == ["alpha", "beta"]

@pytest.mark.peewee_db(isolation="clear", reset_sequences=True)  # the sequences restart: then move past the seeds
def test_clear_writes_over_it():
    with database.allow_sync():
        Note.delete().where(Note.text == "beta").execute()
        Note.update(text="changed").execute()
        Comment.create(note=Note.create(text="mine"))

async def test_after_a_clear_the_seed_data_is_back():
    assert await texts() == ["alpha", "beta"]
    assert await Comment.select().aio_count() == 0
    await Note.aio_create(text="gamma")  # its id is past the seed rows'
"""


@pytest.mark.parametrize("backend", ["aiopg", "psycopg", "sqlite"])
def test_seed_data_is_written_once_seen_protected_and_put_back_after_a_clear(
    inner: pytest.Pytester, backend: str
) -> None:
    make_ini(inner, ISOLATED)
    use(inner, backend)
    folder = inner.mkdir("seeded")
    inner.makeconftest(SEED.format(folder=str(folder)))
    inner.makepyfile(SEED_TESTS)
    inner.runpytest_subprocess().assert_outcomes(passed=4)
    assert len(list(folder.iterdir())) == 1


def test_under_xdist_the_seed_data_is_written_once_into_the_template(inner: pytest.Pytester) -> None:
    make_ini(inner, ISOLATED)
    folder = inner.mkdir("seeded")
    inner.makeconftest(SEED.format(folder=str(folder)))
    inner.makepyfile(
        test_one=SEED_TESTS,
        test_two="from test_one import *\n",
    )
    inner.runpytest_subprocess("-n", "2", "--dist", "loadfile").assert_outcomes(passed=8)
    assert len(list(folder.iterdir())) == 1, "the seed hook ran once per worker"


ASYNC_SEED = """
from app.models import Note

async def pytest_peewee_async_seed_database(database):
    await Note.aio_create(text="async")
"""


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_an_async_seed_hook_runs_on_a_loop_of_its_own(inner: pytest.Pytester, backend: str) -> None:
    make_ini(inner, ISOLATED)
    use(inner, backend)
    inner.makeconftest(ASYNC_SEED)
    inner.makepyfile(
        """
        from app.models import Note

        async def test_seen():
            assert [note.text for note in await Note.select().aio_execute()] == ["async"]
        """
    )
    inner.runpytest().assert_outcomes(passed=1)


CHANGES: dict[str, tuple[str, Callable[[str], str]]] = {
    "models": ("app/models.py", lambda text: text.replace("unique=True", "unique=True, null=True")),
    "migration file": ("migrations/001_initial.py", lambda text: text + "\n# a change\n"),
    "new migration": ("migrations/002_tag.py", lambda text: MODEL_MIGRATION),
    "SQL file": ("schema/shout.sql", lambda text: text + "\n-- a change\n"),
    "seed hook": ("conftest.py", lambda text: text.replace('"beta"', '"gamma"')),
}


@pytest.mark.parametrize("change", CHANGES)
def test_reuse_rebuilds_when_what_the_build_depends_on_changes(
    inner: pytest.Pytester, pg_server: PostgresServer, change: str
) -> None:
    migrated(inner)
    inner.makeconftest(SEED.format(folder=str(inner.mkdir("seeded"))))
    inner.makepyfile("async def test_x():\n    pass\n")
    try:
        first = inner.runpytest("--peewee-reuse-db")
        first.stdout.fnmatch_lines(["*test database test_app on * (created, kept)"])
        inner.runpytest("--peewee-reuse-db").stdout.fnmatch_lines(["*test database test_app on * (reused, kept)"])
        path, edit = CHANGES[change]
        changed = inner.path / path
        changed.write_text(edit(changed.read_text() if changed.exists() else ""))
        inner.runpytest("--peewee-reuse-db").stdout.fnmatch_lines(["*test database test_app on * (created, kept)"])
        if change == "seed hook":
            rows = admin(pg_server, "SELECT text FROM note ORDER BY text", database="test_app")
            assert rows == [("ALPHA",), ("GAMMA",)]  # (upper-cased by the trigger)
    finally:
        admin(pg_server, "DROP DATABASE IF EXISTS test_app WITH (FORCE)")


#: Seeded tables no model has, by what is special about them: (the table, its rows, the row a clear test deletes,
#: the rows the next test must find, the backends).
SEEDED_TABLES = {
    "no model": ("lookup (id INTEGER PRIMARY KEY, code VARCHAR(10))", "(1, 'a'), (2, 'b')", [(1, "a"), (2, "b")]),
    "generated column": (  # (SELECT * reads it on SQLite, and it takes no value)
        "price (id INTEGER PRIMARY KEY, net INTEGER, gross INTEGER GENERATED ALWAYS AS (net * 2) STORED)",
        "(1, 10), (2, 20)",
        [(1, 10, 20), (2, 20, 40)],
    ),
    "deferrable unique": (  # (ON CONFLICT refuses a table with one: put back as a table without a key)
        "slot (id INTEGER PRIMARY KEY, pos INTEGER UNIQUE DEFERRABLE INITIALLY DEFERRED)",
        "(1, 1), (2, 2)",
        [(1, 1), (2, 2)],
    ),
}


@pytest.mark.parametrize("backend", ["aiopg", "sqlite"])
@pytest.mark.parametrize("kind", SEEDED_TABLES)
def test_seed_rows_of_a_table_no_model_has_are_put_back(inner: pytest.Pytester, kind: str, backend: str) -> None:
    table, rows, expected = SEEDED_TABLES[kind]
    if kind == "deferrable unique" and backend == "sqlite":
        pytest.skip("SQLite's unique constraints are checked at once")
    make_ini(inner, ISOLATED)
    use(inner, backend)
    name = table.split()[0]
    inner.makeconftest(
        f"""
        def pytest_peewee_async_seed_database(database):
            database.execute_sql("CREATE TABLE {table}")
            database.execute_sql("INSERT INTO {name} VALUES {rows}")
        """
    )
    inner.makepyfile(
        f"""
        import pytest
        from app.db import database
        from peewee_async.databases import fetchall

        @pytest.mark.peewee_db(isolation="clear")
        async def test_deletes_one():
            await database.aio_execute_sql("DELETE FROM {name} WHERE id = 1")

        async def test_it_is_back():
            rows = await database.aio_execute_sql("SELECT * FROM {name} ORDER BY id", fetch_results=fetchall)
            assert [tuple(row) for row in rows] == {expected!r}
        """
    )
    inner.runpytest().assert_outcomes(passed=2)


OTHER_SCHEMA_MODELS = """
import peewee
import peewee_async

from app.db import database


class Country(peewee_async.AioModel):
    code = peewee.CharField(unique=True)

    class Meta:
        database = database
        schema = "ref"


class Note(peewee_async.AioModel):
    text = peewee.CharField(unique=True)

    class Meta:
        database = database
"""
OTHER_SCHEMA_SEED = """
from app.models import Country, Note

def pytest_peewee_async_seed_database(database):
    Country.insert_many([{"code": "fr"}, {"code": "nl"}]).execute()
    Note.create(text="fr")
"""


def test_seed_rows_of_a_table_in_another_schema_are_put_back(inner: pytest.Pytester) -> None:
    make_ini(inner, ISOLATED + "peewee_async_sql = schema/ref.sql\n")
    inner.mkdir("schema").joinpath("ref.sql").write_text("CREATE SCHEMA ref;\nCREATE TABLE ref.note (id INT);\n")
    inner.path.joinpath("app", "models.py").write_text(OTHER_SCHEMA_MODELS)
    inner.makeconftest(OTHER_SCHEMA_SEED)
    inner.makepyfile(
        """
        import pytest
        from app.models import Country, Note

        @pytest.mark.peewee_db(isolation="clear")
        async def test_writes_to_both():
            await Country.aio_create(code="de")
            await Note.aio_create(text="de")

        async def test_the_seed_rows_are_back():
            assert sorted(country.code for country in await Country.select().aio_execute()) == ["fr", "nl"]
            assert [note.text for note in await Note.select().aio_execute()] == ["fr"]
        """
    )
    inner.runpytest().assert_outcomes(passed=2)


TRIGGER_SEED = """
def pytest_peewee_async_seed_database(database):
    database.execute_sql(
        "CREATE FUNCTION numbered() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN NEW.text := NEW.text || '-' || (SELECT count(*) FROM note); RETURN NEW; END $$"
    )
    database.execute_sql("CREATE TRIGGER note_numbered BEFORE INSERT ON note FOR EACH ROW EXECUTE FUNCTION numbered()")
    database.execute_sql("CREATE TRIGGER note_always BEFORE INSERT ON note FOR EACH ROW EXECUTE FUNCTION numbered()")
    database.execute_sql("ALTER TABLE note ENABLE ALWAYS TRIGGER note_always")
    database.execute_sql("CREATE TRIGGER note_off BEFORE INSERT ON note FOR EACH ROW EXECUTE FUNCTION numbered()")
    database.execute_sql("ALTER TABLE note DISABLE TRIGGER note_off")
    database.execute_sql("INSERT INTO note (text) VALUES ('alpha')")
"""


def test_seed_rows_are_put_back_as_they_were_not_through_the_tables_triggers(inner: pytest.Pytester) -> None:
    make_ini(inner, ISOLATED)
    inner.makeconftest(TRIGGER_SEED)
    inner.makepyfile(
        """
        import pytest
        from app.db import database
        from app.models import Note
        from peewee_async.databases import fetchall

        @pytest.mark.peewee_db(isolation="clear")
        async def test_writes():
            await Note.aio_create(text="mine")

        async def test_the_seed_row_is_back_unchanged_and_the_triggers_as_they_were():
            assert [note.text for note in await Note.select().aio_execute()] == ["alpha-0-0"]
            rows = await database.aio_execute_sql(
                "SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'note'::regclass AND NOT tgisinternal "
                "ORDER BY tgname",
                fetch_results=fetchall,
            )
            assert [tuple(row) for row in rows] == [("note_always", "A"), ("note_numbered", "O"), ("note_off", "D")]
            await Note.aio_create(text="new")
            assert (await Note.aio_get(Note.text.startswith("new"))).text == "new-1-1"  # they still fire
        """
    )
    inner.runpytest().assert_outcomes(passed=2)


FAILING_SEED = """
from app.models import Note

{kind} pytest_peewee_async_seed_database(database):
    Note.insert(text="half").execute()
    raise RuntimeError("no reference data today")
"""


@pytest.mark.parametrize("kind", ["def", "async def"])
@pytest.mark.parametrize("backend", ["aiopg", "sqlite"])
def test_a_failing_seed_hook_is_named_with_its_line_once_and_leaves_nothing(
    inner: pytest.Pytester, backend: str, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_ini(inner, ISOLATED)
    use(inner, backend)
    monkeypatch.setenv("TMPDIR", str(inner.mkdir("tmp")))  # where an SQLite test database's folder is made
    inner.makeconftest(FAILING_SEED.format(kind=kind))
    inner.makepyfile("async def test_x():\n    pass\n")
    result = inner.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    pattern = "*pytest_peewee_async_seed_database failed at *conftest.py:5: RuntimeError: no reference data today*"
    said_lines = [line for line in result.stdout.lines + result.stderr.lines if fnmatch.fnmatch(line, pattern)]
    assert len(said_lines) == 1, result.stdout.str() + result.stderr.str()
    assert not list(inner.path.joinpath("tmp").iterdir())
    # (the app_database fixture checks that no test database was left behind)


def test_a_seed_hook_that_points_the_database_at_the_real_one_is_refused(inner: pytest.Pytester) -> None:
    make_ini(inner, ISOLATED)
    inner.makeconftest(
        """
        import os

        def pytest_peewee_async_seed_database(database):
            database.init("app", host=os.environ["INNER_HOST"], port=int(os.environ["INNER_PORT"]), user="postgres")
            database.execute_sql("INSERT INTO note (text) VALUES ('seeded into the real database')")
        """
    )
    inner.makepyfile("async def test_x():\n    pass\n")
    result = inner.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    said = [line for line in result.stdout.lines + result.stderr.lines if "real database" in line]
    assert len(said) == 1, said
    assert said[0].count("peewee-async-testing:") == 1, said
    assert "pointed at your real database 'app' while the test database was built" in said[0]
    # (the app_database fixture checks that the real database was not written to)
