"""The ready-made migration tests: collected when switched on, each on a scratch database removed after it, and
each failing, naming the migration and the difference, on the mistake it is there to catch."""

from __future__ import annotations

from pathlib import Path

import pytest

from peewee_async_testing import PostgresServer

from ..helpers import admin, databases
from .project import CONFIGURED, make_ini

ON = CONFIGURED + "peewee_async_migrations = app/migrations\npeewee_async_sql = schema.sql\n"
ITEMS = [
    "tox.ini::test_peewee_migrations_apply",
    "tox.ini::test_peewee_migrations_up_down",
    "tox.ini::test_peewee_migrations_match_models",
    "tox.ini::test_peewee_models_registered",
]

#: Run first (peewee_async_sql): a function the trigger of 002 calls.
SCHEMA_SQL = """
CREATE FUNCTION note_touched() RETURNS trigger AS $$ BEGIN NEW.text := trim(NEW.text); RETURN NEW; END $$
LANGUAGE plpgsql;
"""

#: The app's models (tests/plugin/project.py's APP_MODELS: Note, Comment), as two migrations build them.
NOTES = """
import peewee

def migrate(migrator, database, *, fake=False):
    @migrator.create_model
    class Note(peewee.Model):
        text = peewee.CharField(unique=True)

        class Meta:
            table_name = "note"

def rollback(migrator, database, *, fake=False):
    migrator.remove_model("note")
"""

COMMENTS = """
import peewee

def migrate(migrator, database, *, fake=False):
    @migrator.create_model
    class Comment(peewee.Model):
        note = peewee.ForeignKeyField(migrator.orm["note"], backref="comments")

        class Meta:
            table_name = "comment"

def rollback(migrator, database, *, fake=False):
    migrator.remove_model("comment")
"""

#: What no model declares: an extension, an enum type, a function, a trigger, a view, a sequence, an index.
EXTRAS = """
def migrate(migrator, database, *, fake=False):
    migrator.sql("CREATE EXTENSION citext")
    migrator.sql("CREATE TYPE mood AS ENUM ('happy', 'sad')")
    migrator.sql("CREATE FUNCTION answer() RETURNS integer AS $$ SELECT 42 $$ LANGUAGE sql")
    migrator.sql("CREATE TRIGGER note_touch BEFORE INSERT ON note FOR EACH ROW EXECUTE FUNCTION note_touched()")
    migrator.sql("CREATE VIEW note_texts AS SELECT text FROM note")
    migrator.sql("CREATE SEQUENCE ticket START 100")
    migrator.sql("CREATE INDEX note_text_lower ON note (lower(text))")

def rollback(migrator, database, *, fake=False):
    migrator.sql("DROP INDEX note_text_lower")
    migrator.sql("DROP SEQUENCE ticket")
    migrator.sql("DROP VIEW note_texts")
    migrator.sql("DROP TRIGGER note_touch ON note")
    migrator.sql("DROP FUNCTION answer()")
    migrator.sql("DROP TYPE mood")
    migrator.sql("DROP EXTENSION citext")
"""

#: SQLite's: a column added and removed, an index, a trigger.
SQLITE_EXTRAS = """
import peewee

def migrate(migrator, database, *, fake=False):
    migrator.add_fields("note", title=peewee.CharField(null=True))
    migrator.sql("CREATE INDEX note_text_lower ON note (lower(text))")
    migrator.sql(
        "CREATE TRIGGER note_touch AFTER INSERT ON note BEGIN UPDATE note SET text = trim(NEW.text) WHERE id = NEW.id; "
        "END"
    )

def rollback(migrator, database, *, fake=False):
    migrator.sql("DROP TRIGGER note_touch")
    migrator.sql("DROP INDEX note_text_lower")
    migrator.remove_fields("note", "title")
"""

SQLITE_DB = "import peewee_async\n\ndatabase = peewee_async.SqliteDatabase({path!r}, pragmas={{'foreign_keys': 1}})\n"
#: The SQLite app's models: the project's, and the title its migration adds.
SQLITE_MODELS = """
import peewee
import peewee_async

from app.db import database


class Note(peewee_async.AioModel):
    text = peewee.CharField(unique=True)
    title = peewee.CharField(null=True)

    class Meta:
        database = database


class Comment(peewee_async.AioModel):
    note = peewee.ForeignKeyField(Note, backref="comments")

    class Meta:
        database = database
"""


def project(inner: pytest.Pytester, engine: str = "postgres", extra: str = "", **files: str) -> Path:
    """The app with its migrations (``files`` replace or add some, by name), switched on in the ini file."""
    folder = inner.path / "app" / "migrations"
    folder.mkdir()
    migrations = {"001_notes": NOTES, "002_comments": COMMENTS}
    migrations["003_extras"] = EXTRAS if engine == "postgres" else SQLITE_EXTRAS
    for name, text in {**migrations, **files}.items():
        if text:
            folder.joinpath(f"{name}.py").write_text(text)
    if engine == "sqlite":
        inner.path.joinpath("app", "db.py").write_text(SQLITE_DB.format(path=str(inner.path / "app.db")))
        inner.path.joinpath("app", "models.py").write_text(SQLITE_MODELS)
        inner.path.joinpath("schema.sql").write_text("CREATE TABLE IF NOT EXISTS unrelated (x integer);\n")
    else:
        inner.path.joinpath("schema.sql").write_text(SCHEMA_SQL)
    make_ini(inner, ON + "peewee_async_migration_tests = true\n" + extra)
    return folder


def leftovers(server: PostgresServer) -> set[str]:
    """The databases of the server that are not its own nor the app's."""
    return databases(server) - {"postgres", "template0", "template1", "app"}


def run(inner: pytest.Pytester, *args: str) -> pytest.RunResult:
    """An inner session in a process of its own: the model classes of an earlier one must not be around."""
    return inner.runpytest_subprocess(*args)


def failure(result: pytest.RunResult, test: str) -> str:
    """The report of ``test``'s failure: the lines between its header and the next section."""
    lines = result.stdout.lines
    start = next(index for index, line in enumerate(lines) if line.startswith("_") and test in line)
    end = next(index for index, line in enumerate(lines[start + 1 :], start + 1) if line.startswith(("_", "=", "-")))
    return "\n".join(lines[start + 1 : end])


@pytest.mark.parametrize("engine", ["postgres", "sqlite"])
def test_all_four_pass_on_a_good_project(inner: pytest.Pytester, pg_server: PostgresServer, engine: str) -> None:
    project(inner, engine)
    inner.makepyfile(test_app="async def test_own(peewee_database):\n    pass\n")
    result = run(inner, "-v")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines([f"{item} PASSED*" for item in ITEMS], consecutive=False)
    assert not leftovers(pg_server)


def test_under_xdist_all_four_pass_each_on_its_worker(inner: pytest.Pytester, pg_server: PostgresServer) -> None:
    project(inner, extra="peewee_async_autouse = true\n")  # which isolates none of them: they need no test database
    result = run(inner, "-n", "2", "-p", "no:benchmark", "-v")
    result.assert_outcomes(passed=4)
    for item in ITEMS:  # in the order the workers ran them
        result.stdout.fnmatch_lines([f"[[]gw?[]] *PASSED {item}*"])
    assert "peewee-async-testing: test database" not in result.stdout.str()  # none made for them
    assert not leftovers(pg_server)


def test_off_by_default(inner: pytest.Pytester) -> None:
    project(inner)
    make_ini(inner, ON)  # the migrations are set, the tests are not asked for
    inner.makepyfile(test_app="def test_own():\n    pass\n")
    result = run(inner, "--collect-only", "-q")
    assert "tox.ini" not in result.stdout.str()
    result.stdout.fnmatch_lines(["test_app.py::test_own", "1 test collected*"])


@pytest.mark.parametrize("how", ["ini", "option"])
def test_the_ini_line_and_the_option_each_switch_them_on(inner: pytest.Pytester, how: str) -> None:
    project(inner)
    if how == "option":
        make_ini(inner, ON)
    result = run(inner, "--collect-only", "-q", *(["--peewee-migration-tests"] if how == "option" else []))
    result.stdout.fnmatch_lines([*ITEMS, "4 tests collected*"])


def test_collected_with_testpaths_and_left_out_when_other_paths_are_named(inner: pytest.Pytester) -> None:
    project(inner, extra="testpaths = checks\n")
    inner.mkdir("checks").joinpath("test_own.py").write_text("def test_own():\n    pass\n")
    result = run(inner, "--collect-only", "-q")
    result.stdout.fnmatch_lines([*ITEMS, "checks/test_own.py::test_own", "5 tests collected*"])  # theirs first
    named = run(inner, "--collect-only", "-q", "checks")
    named.stdout.fnmatch_lines(["checks/test_own.py::test_own", "1 test collected*"])
    one = run(inner, "-q", "tox.ini::test_peewee_migrations_apply", "-m", "peewee_migrations")
    one.assert_outcomes(passed=1)


def test_switched_on_without_migrations_is_a_usage_error(inner: pytest.Pytester) -> None:
    make_ini(inner, CONFIGURED + "peewee_async_migration_tests = true")
    result = run(inner)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: peewee_async_migration_tests asks for the ready-made migration tests, but peewee_async_migrations "
            "is not set in the ini file*"
        ]
    )


@pytest.mark.parametrize(
    ("engine", "broken", "error"),
    [
        ("postgres", "ALTER TABLE nowhere ADD COLUMN x integer", 'ProgrammingError: relation "nowhere" does not exist'),
        # SQLite's own error, which peewee-migrate's extra rollback ("no transaction is active") would hide
        (
            "sqlite",
            "ALTER TABLE nowhere ADD COLUMN x integer",
            "*raised while handling OperationalError: no such table: nowhere",
        ),
    ],
)
def test_a_broken_migration_is_named_by_apply(
    inner: pytest.Pytester, pg_server: PostgresServer, engine: str, broken: str, error: str
) -> None:
    project(
        inner,
        engine,
        **{"004_broken": f"def migrate(migrator, database, *, fake=False):\n    migrator.sql({broken!r})\n"},
    )
    # A test of the app's, collected before them: it needs the session's test database, which the same migrations
    # build, so the session stops there; the migration tests run first, and say which migration it is.
    inner.makepyfile(test_app="async def test_needs_the_database(peewee_database):\n    pass\n")
    result = run(inner, "-k", "apply or needs")
    result.assert_outcomes(failed=1)
    report = failure(result, "test_peewee_migrations_apply")
    assert report.startswith("On an empty database, peewee-migrate failed applying 004_broken ("), report
    assert len(report.splitlines()) == 1, report  # the error once (not peewee's copy of the driver's again)
    result.stdout.fnmatch_lines([f"*): {error}"])
    assert not leftovers(pg_server)


@pytest.mark.parametrize(
    ("engine", "forgotten", "left"),
    [
        ("postgres", 'migrator.sql("DROP INDEX note_text_lower")', "  + index public.note_text_lower: CREATE INDEX*"),
        ("postgres", 'migrator.sql("DROP FUNCTION answer()")', "  + function public.answer(): CREATE OR REPLACE*"),
        ("postgres", 'migrator.sql("DROP EXTENSION citext")', "  + extension citext: version *"),
        ("postgres", 'migrator.sql("DROP TYPE mood")', "  + enum public.mood: 'happy', 'sad'"),
        (
            "sqlite",
            'migrator.remove_fields("note", "title")',
            '  ~ table note: was CREATE TABLE "note" (*); now *"title"*',
        ),
        ("sqlite", 'migrator.sql("DROP TRIGGER note_touch")', "  + trigger note_touch on note: CREATE TRIGGER*"),
    ],
)
def test_a_broken_rollback_is_caught_by_up_down(
    inner: pytest.Pytester, pg_server: PostgresServer, engine: str, forgotten: str, left: str
) -> None:
    extras = EXTRAS if engine == "postgres" else SQLITE_EXTRAS
    assert forgotten in extras
    project(inner, engine, **{"003_extras": extras.replace(forgotten, "pass")})
    result = run(inner, "-k", "up_down")
    result.assert_outcomes(failed=1)
    report = failure(result, "test_peewee_migrations_up_down").splitlines()
    assert report[0].startswith("Migration 003_extras, applied and rolled back, does not leave the schema as it found")
    assert len(report) == 2, report  # what the rollback forgot, and nothing else
    result.stdout.fnmatch_lines([left])
    assert not leftovers(pg_server)


def test_a_rollback_that_fails_is_named_by_up_down(inner: pytest.Pytester) -> None:
    project(inner, **{"003_extras": EXTRAS.replace("DROP VIEW note_texts", "DROP VIEW nowhere")})
    result = run(inner, "-k", "up_down")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "Migration 003_extras applied, but its rollback failed: peewee-migrate failed rolling back 003_extras (*): "
            'ProgrammingError: view "nowhere" does not exist'
        ]
    )


@pytest.mark.parametrize("engine", ["postgres", "sqlite"])
def test_a_forgotten_migration_is_caught_by_match_models(inner: pytest.Pytester, engine: str) -> None:
    project(inner, engine)
    models = inner.path / "app" / "models.py"
    models.write_text(
        models.read_text().replace(
            "text = peewee.CharField(unique=True)",
            "text = peewee.CharField(unique=True)\n    rank = peewee.IntegerField(default=0)",
        )
    )
    result = run(inner, "-k", "match_models")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "After the 3 migrations of app/migrations, the schema is not the models' (a migration forgotten, or a "
            "model changed without one):",
            "The schema of the peewee_async.*Database *test_app_migrations* differs from the models: 1 difference*",
            '  note: column "rank" missing (INTEGER NOT NULL in the models)',
        ]
    )


#: A model module that nothing the plugin imports imports.
TAGS = """
import peewee
import peewee_async

from app.db import database


class Tag(peewee_async.AioModel):
    name = peewee.CharField()

    class Meta:
        database = database
"""


def test_an_unimported_model_module_is_caught_by_registered(inner: pytest.Pytester) -> None:
    project(inner)
    inner.path.joinpath("app", "tags.py").write_text(TAGS)
    inner.makepyfile(test_tags="import app.tags\n\ndef test_imports_it():\n    pass\n")  # imported by a test: too late
    result = run(inner, "-k", "registered")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ['  app.tags.Tag (table "tag")', "Nothing the plugin imports imports the module app.tags*"]
    )


def test_the_models_package_is_set_in_the_ini_file(inner: pytest.Pytester) -> None:
    project(inner, extra="peewee_async_models_package = app.models\n")
    inner.path.joinpath("app", "tags.py").write_text(TAGS)
    run(inner, "-k", "registered").assert_outcomes(passed=1)  # app.tags is not under app.models


#: A first migration that writes down the database it runs on, in the file ``seen``.
RECORD = """
def migrate(migrator, database, *, fake=False):
    with open({seen!r}, "a") as out:
        out.write(database.database + "\\n")
"""


def test_each_runs_on_a_scratch_database_removed_after_it(inner: pytest.Pytester, pg_server: PostgresServer) -> None:
    seen = inner.path / "seen"
    project(inner, **{"000_record": RECORD.format(seen=str(seen))})
    inner.makepyfile(test_app="async def test_first(peewee_database):\n    pass\n")  # the object on test_app now
    run(inner, "-k", "not registered").assert_outcomes(passed=4)
    names = set(seen.read_text().split())
    assert names == {"test_app", "test_app_migrations"}  # the session's test database is built by them too
    assert not leftovers(pg_server)


def test_the_scratch_sqlite_database_is_in_a_folder_removed_after_it(inner: pytest.Pytester) -> None:
    seen = inner.path / "seen"
    project(inner, "sqlite", **{"000_record": RECORD.format(seen=str(seen))})
    inner.makepyfile(test_app="async def test_first(peewee_database):\n    pass\n")  # the object on test_app.db now
    run(inner, "-k", "apply or first").assert_outcomes(passed=2)
    paths = {Path(path) for path in seen.read_text().split()}
    assert {path.name for path in paths} == {"test_app.db", "test_app_migrations.db"}  # the session's, the scratch
    (path,) = [path for path in paths if path.name == "test_app_migrations.db"]
    assert not path.parent.exists()


def test_a_database_of_that_name_not_the_projects_is_left_alone(
    inner: pytest.Pytester, pg_server: PostgresServer
) -> None:
    admin(pg_server, "CREATE DATABASE test_app_migrations")
    try:
        project(inner)
        result = run(inner, "-k", "apply")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            ['The database "test_app_migrations" on * already exists and is not a scratch database of this project*']
        )
        assert "test_app_migrations" in databases(pg_server)
    finally:
        admin(pg_server, "DROP DATABASE IF EXISTS test_app_migrations")


def test_a_migration_that_binds_an_app_model_leaves_it_bound_to_the_app(inner: pytest.Pytester) -> None:
    """peewee-migrate's create_model() binds the model it is given to the scratch database: it goes back after."""
    own = """
from app.models import Note

def migrate(migrator, database, *, fake=False):
    migrator.create_model(Note)

def rollback(migrator, database, *, fake=False):
    migrator.remove_model("note")
"""
    project(inner, **{"001_notes": own})
    inner.makepyfile(
        test_app="""
        import pytest
        from app.models import Note

        @pytest.mark.peewee_db
        async def test_after_them():
            await Note.aio_create(text="x")
        """
    )
    result = run(inner, "-v")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(
        ["tox.ini::test_peewee_models_registered PASSED*", "test_app.py::test_after_them PASSED*"]
    )
