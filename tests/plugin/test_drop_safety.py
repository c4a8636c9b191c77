"""On a shared server a session drops only the test databases the plugin made for this project, and none that a
live session holds: not another project's, not a user's, not another role's, not a sibling's still being set up.

The ``pg_server`` stands for the shared server: inner sessions are attached to it (``PEEWEE_ASYNC_TESTING_DSN``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import pytest

from peewee_async_testing import PostgresServer

from ..helpers import admin, databases
from .project import APP_DB, APP_MODELS, CONFIGURED, make_ini

ONE_TEST = "import pytest\n\n@pytest.mark.peewee_db\nasync def test_x():\n    pass\n"


def users_database(server: PostgresServer, name: str) -> None:
    """A database a user made by hand, named like a test database, with a row of theirs."""
    admin(server, f'CREATE DATABASE "{name}"')
    admin(server, "CREATE TABLE note (text text)", database=name)
    admin(server, "INSERT INTO note VALUES ('theirs')", database=name)


def notes(server: PostgresServer, name: str) -> list[str]:
    return [text for (text,) in admin(server, "SELECT text FROM note", database=name)]


def another_projects_database(inner: pytest.Pytester, server: PostgresServer) -> None:
    """``test_app_api``: made and kept (``--peewee-reuse-db``) by this plugin for another project, whose app
    database is ``app_api``; with a row of theirs."""
    inner.mkpydir("other")
    inner.path.joinpath("other", "db.py").write_text(APP_DB.replace('"app"', '"app_api"'))
    inner.path.joinpath("other", "models.py").write_text(APP_MODELS.replace("app.db", "other.db"))
    make_ini(inner, "peewee_async_database = other.db:database\npeewee_async_models = other.models")
    test = inner.makepyfile(test_other=ONE_TEST)
    inner.runpytest("--peewee-reuse-db").assert_outcomes(passed=1)
    test.unlink()
    make_ini(inner)
    admin(server, "INSERT INTO note (text) VALUES ('theirs')", database="test_app_api")


def kept_by_a_run(inner: pytest.Pytester, server: PostgresServer, suffix: str, *options: str) -> None:
    """What a crashed run leaves: its test databases, made by the plugin for this project. (Made here by a run
    that keeps them, ``--peewee-reuse-db``; their marks then lose the word that they were kept on purpose.)"""
    test = inner.makepyfile(test_left=ONE_TEST)
    inner.runpytest("--peewee-reuse-db", f"--peewee-db-suffix={suffix}", *options).assert_outcomes(passed=1)
    test.unlink()
    crashed(server)


def crashed(server: PostgresServer) -> None:
    """Make the ``test_app...`` databases kept by a run as a crashed run leaves them: not marked as kept. Its
    sessions are gone first: a server process lingers a moment after its client has closed the connection (on a
    loaded machine, long enough for the next run to find the database in use)."""
    deadline = time.monotonic() + 30
    while admin(server, "SELECT pid FROM pg_stat_activity WHERE starts_with(datname, %s)", ("test_app",)):
        assert time.monotonic() < deadline, "the run that kept its databases left sessions connected to them"
        time.sleep(0.05)
    for name in databases(server):
        if name.startswith("test_app"):
            set_mark(server, name, {key: value for key, value in mark_of(server, name).items() if key != "kept"})


def mark_of(server: PostgresServer, name: str) -> dict[str, object]:
    """What the plugin's comment on database ``name`` says (empty without one)."""
    rows = admin(server, "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", (name,))
    comment = rows[0][0] or ""
    prefix = "peewee-async-testing test database "
    return dict(json.loads(comment[len(prefix) :])) if comment.startswith(prefix) else {}


def set_mark(server: PostgresServer, name: str, mark: dict[str, object]) -> None:
    admin(server, f'COMMENT ON DATABASE "{name}" IS %s', ("peewee-async-testing test database " + json.dumps(mark),))


@pytest.fixture
def cleanup(pg_server: PostgresServer) -> Iterator[list[str]]:
    """Names of databases (and roles, as ``role:name``) the test made, dropped at its end."""
    made: list[str] = []
    yield made
    for name in made:
        if name.startswith("role:"):
            admin(pg_server, f'DROP ROLE IF EXISTS "{name[5:]}"')
        else:
            admin(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("option", ["--peewee-drop-stale", "--peewee-create-db"])
def test_another_projects_and_a_users_databases_survive(
    inner: pytest.Pytester, pg_server: PostgresServer, cleanup: list[str], option: str
) -> None:
    cleanup += ["test_app_api", "test_app_backup"]
    another_projects_database(inner, pg_server)
    users_database(pg_server, "test_app_backup")
    inner.makepyfile(ONE_TEST)
    result = inner.runpytest(option)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*test database test_app on * (created, dropped); kept: "
            "test_app_api (made for another project: other.db, database app_api), "
            "test_app_backup (not made by peewee-async-testing)"
        ]
    )
    assert notes(pg_server, "test_app_api") == ["theirs"]
    assert notes(pg_server, "test_app_backup") == ["theirs"]


@pytest.mark.parametrize("options", [(), ("--peewee-drop-stale",), ("--peewee-create-db",)], ids=str)
def test_a_test_database_the_plugin_did_not_make_is_refused_and_kept(
    inner: pytest.Pytester, pg_server: PostgresServer, cleanup: list[str], options: tuple[str, ...]
) -> None:
    cleanup.append("test_app")
    users_database(pg_server, "test_app")
    inner.makepyfile(ONE_TEST)
    result = inner.runpytest(*options)
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # said once, for the session
    result.stdout.fnmatch_lines(
        [
            '*The database "test_app" on * already exists and is not a test database of this project '
            "(not made by peewee-async-testing; this project is app.db, database app)*--peewee-db-suffix*"
        ]
    )
    assert notes(pg_server, "test_app") == ["theirs"]
    assert {name for name in databases(pg_server) if name.startswith("test_app")} == {"test_app"}


def test_a_stale_database_of_another_role_is_reported_and_the_run_goes_on(
    inner: pytest.Pytester, pg_server: PostgresServer, cleanup: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cleanup += ["test_app_old", "test_app_gone", "role:ci", "role:other"]
    admin(pg_server, "CREATE ROLE ci LOGIN CREATEDB")
    admin(pg_server, "CREATE ROLE other")
    kept_by_a_run(inner, pg_server, "old")
    kept_by_a_run(inner, pg_server, "gone")
    admin(pg_server, "ALTER DATABASE test_app_old OWNER TO other")
    admin(pg_server, "ALTER DATABASE test_app_gone OWNER TO ci")
    monkeypatch.setenv("PEEWEE_ASYNC_TESTING_DSN", f"postgresql://ci@{pg_server.host}:{pg_server.port}/postgres")
    inner.makepyfile(ONE_TEST)
    result = inner.runpytest("--peewee-drop-stale")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*test database test_app on * (created, dropped); dropped stale: test_app_gone; "
            "kept: test_app_old (owned by role other, which ci cannot drop)"
        ]
    )
    assert "test_app_old" in databases(pg_server)
    own = inner.runpytest("--peewee-db-suffix=old")  # as its own name: refused, and kept
    assert own.ret == pytest.ExitCode.USAGE_ERROR
    own.stdout.fnmatch_lines(["*'test_app_old' on * was made for this project, but is owned by role other, which*"])
    assert "test_app_old" in databases(pg_server)


def test_drop_stale_drops_what_crashed_runs_of_this_project_left(
    inner: pytest.Pytester, pg_server: PostgresServer, cleanup: list[str]
) -> None:
    cleanup.append("test_apple")
    kept_by_a_run(inner, pg_server, "crashed")
    admin(pg_server, "CREATE DATABASE test_apple")  # another project's: not even named like ours
    inner.makepyfile(ONE_TEST)
    result = inner.runpytest("--peewee-drop-stale")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*(created, dropped); dropped stale: test_app_crashed"])
    assert "test_app_crashed" not in databases(pg_server)
    assert "test_apple" in databases(pg_server)


def test_a_test_database_a_live_session_holds_is_refused(
    inner: pytest.Pytester, pg_server: PostgresServer, cleanup: list[str]
) -> None:
    cleanup.append("test_app")
    kept_by_a_run(inner, pg_server, "")
    holder = psycopg2.connect(**pg_server.connect_params("test_app"))  # a live session of it
    try:
        inner.makepyfile(ONE_TEST)
        for options in [(), ("--peewee-create-db",)]:
            result = inner.runpytest(*options)
            assert result.ret == pytest.ExitCode.USAGE_ERROR  # said once, for the session
            result.stdout.fnmatch_lines(["*'test_app' is in use by another session*--peewee-db-suffix*"])
    finally:
        holder.close()
    assert "test_app" in databases(pg_server)


def test_a_template_whose_clones_are_held_is_not_stale(
    inner: pytest.Pytester, pg_server: PostgresServer, cleanup: list[str]
) -> None:
    cleanup += ["test_app_live", "test_app_live_gw0", "test_app_live_gw1"]
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makepyfile(**{f"test_left_{i}": "async def test_x():\n    pass\n" for i in range(4)})
    inner.runpytest("--peewee-reuse-db", "--peewee-db-suffix", "live", "-n", "2", "-p", "no:benchmark")
    crashed(pg_server)
    for i in range(4):
        inner.path.joinpath(f"test_left_{i}.py").unlink()
    live_worker = psycopg2.connect(**pg_server.connect_params("test_app_live_gw0"))  # a run still going on
    try:
        inner.makepyfile(ONE_TEST)
        result = inner.runpytest("--peewee-drop-stale")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(
            [
                "*dropped stale: test_app_live_gw1; kept: test_app_live (the template of test_app_live_gw0), "
                "test_app_live_gw0 (in use)"
            ]
        )
    finally:
        live_worker.close()
    assert {"test_app_live", "test_app_live_gw0"} <= databases(pg_server)


def test_what_a_crashed_xdist_run_left_is_dropped_clones_first(
    inner: pytest.Pytester, pg_server: PostgresServer
) -> None:
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makepyfile(**{f"test_left_{i}": "async def test_x():\n    pass\n" for i in range(4)})
    inner.runpytest("--peewee-reuse-db", "--peewee-db-suffix", "crashed", "-n", "2", "-p", "no:benchmark")
    crashed(pg_server)
    for i in range(4):
        inner.path.joinpath(f"test_left_{i}.py").unlink()
    inner.makepyfile(ONE_TEST)
    result = inner.runpytest("--peewee-drop-stale")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*(created, dropped); dropped stale: test_app_crashed, test_app_crashed_gw0, test_app_crashed_gw1"]
    )


@pytest.mark.parametrize("option", ["--peewee-drop-stale", "--peewee-create-db"])
def test_xdist_workers_never_drop_each_others_databases(
    inner: pytest.Pytester, pg_server: PostgresServer, option: str
) -> None:
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makepyfile(**{f"test_{i}": "async def test_x():\n    pass\n" for i in range(8)})
    for _ in range(3):
        result = inner.runpytest("-n", "4", "-p", "no:benchmark", option)
        result.assert_outcomes(passed=8)
        assert "kept:" not in result.stdout.str(), "a worker reported its siblings' databases"
        assert not {name for name in databases(pg_server) if name.startswith("test_app")}


#: Holds each shard at the end of its collection until all of them are there: they set up at the same time.
BARRIER = """
import os
import pathlib
import time


def pytest_collection_finish(session):
    folder = pathlib.Path(os.environ["BARRIER"])
    folder.joinpath(os.environ["SHARD"]).touch()
    deadline = time.monotonic() + 300
    while len(list(folder.iterdir())) < int(os.environ["SHARDS"]):
        assert time.monotonic() < deadline, "the other shards never came"
        time.sleep(0.001)
"""


def test_ci_shards_started_together_never_drop_each_others_databases(
    inner: pytest.Pytester, pg_server: PostgresServer
) -> None:
    inner.makeconftest(BARRIER)
    inner.makepyfile(ONE_TEST)
    shards = 3
    for round_ in range(4):
        barrier = inner.path / f"barrier_{round_}"
        barrier.mkdir()
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "pytest", "-q", "--peewee-db-suffix", f"shard{shard}", "--peewee-drop-stale"],
                cwd=inner.path,
                env={**os.environ, "BARRIER": str(barrier), "SHARD": str(shard), "SHARDS": str(shards)},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for shard in range(shards)
        ]
        outputs = [run.communicate()[0] for run in runs]
        failed = [output for run, output in zip(runs, outputs, strict=True) if run.returncode != 0]
        assert not failed, f"round {round_}: {len(failed)} of {shards} shards failed:\n" + "\n".join(failed)
        assert not {name for name in databases(pg_server) if name.startswith("test_app")}


#: Two test files for a run of two xdist workers (``--dist loadfile``: one file each): each test says it is
#: running, then waits until it is told to go on.
HELD_TEST = """
import os
import pathlib
import time

import pytest


@pytest.mark.peewee_db
def test_held():
    folder = pathlib.Path(os.environ["BARRIER"])
    folder.joinpath(os.environ["PYTEST_XDIST_WORKER"]).touch()
    deadline = time.monotonic() + 300
    while not folder.joinpath("go").exists():
        assert time.monotonic() < deadline, "never told to go on"
        time.sleep(0.01)
"""


@contextmanager
def a_live_xdist_run(inner: pytest.Pytester) -> Iterator[list[str]]:
    """An xdist run of two workers, both holding their clones of ``test_app`` until the block ends; then its
    output (in the yielded list) once it ended, having passed."""
    barrier = inner.path / "barrier"
    barrier.mkdir()
    inner.makepyfile(test_held_0=HELD_TEST, test_held_1=HELD_TEST)
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:benchmark",
            "-n",
            "2",
            "--dist",
            "loadfile",
            "test_held_0.py",
            "test_held_1.py",
        ],
        cwd=inner.path,
        env={**os.environ, "BARRIER": str(barrier)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        deadline = time.monotonic() + 300
        while {path.name for path in barrier.iterdir()} != {"gw0", "gw1"}:
            assert run.poll() is None, run.communicate()[0]
            assert time.monotonic() < deadline, "the workers never started their tests"
            time.sleep(0.01)
        yield output
    finally:
        barrier.joinpath("go").touch()
        output.append(run.communicate(timeout=300)[0])
    assert run.returncode == 0, output[0]


def test_a_run_without_a_suffix_never_takes_a_live_xdist_runs_template(
    inner: pytest.Pytester, pg_server: PostgresServer
) -> None:
    test = inner.makepyfile(test_second=ONE_TEST)
    with a_live_xdist_run(inner):
        template = admin(pg_server, "SELECT oid FROM pg_database WHERE datname = 'test_app'")
        for options in [(), ("--peewee-reuse-db",), ("--peewee-create-db",)]:
            result = inner.runpytest(str(test), *options)
            assert result.ret == pytest.ExitCode.USAGE_ERROR, options
            result.stdout.fnmatch_lines(
                [
                    "*'test_app' on * is the template of test_app_gw0, test_app_gw1, which another run uses*"
                    "--peewee-db-suffix*"
                ]
            )
            assert admin(pg_server, "SELECT oid FROM pg_database WHERE datname = 'test_app'") == template, options


def test_the_last_worker_leaves_a_template_another_run_made_since(
    inner: pytest.Pytester, pg_server: PostgresServer, cleanup: list[str]
) -> None:
    cleanup.append("test_app")
    with a_live_xdist_run(inner) as output:
        mark = {**mark_of(pg_server, "test_app"), "run": "another run", "kept": True}
        admin(pg_server, "DROP DATABASE test_app")  # the live run's template: held by none
        admin(pg_server, "CREATE DATABASE test_app")
        set_mark(pg_server, "test_app", mark)  # made by another run of the project, and kept
    assert "test_app" in databases(pg_server), output[0]
    assert "kept: test_app (made by another run)" in output[0]


@pytest.mark.parametrize("option", ["--peewee-drop-stale", "--peewee-create-db"])
def test_a_database_another_shard_keeps_for_reuse_is_not_stale(
    inner: pytest.Pytester, pg_server: PostgresServer, cleanup: list[str], option: str
) -> None:
    cleanup.append("test_app_sharda")
    inner.makepyfile(ONE_TEST)
    inner.runpytest("--peewee-db-suffix", "sharda", "--peewee-reuse-db").assert_outcomes(passed=1)
    result = inner.runpytest("--peewee-db-suffix", "shardb", option)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*test database test_app_shardb on * (created, dropped); kept: test_app_sharda (kept for --peewee-reuse-db)"]
    )
    again = inner.runpytest("--peewee-db-suffix", "sharda", "--peewee-reuse-db")  # still there for its shard
    again.stdout.fnmatch_lines(["*test database test_app_sharda on * (reused, kept)"])
    fresh = inner.runpytest("--peewee-db-suffix", "sharda", "--peewee-create-db")  # its own name: made afresh
    fresh.stdout.fnmatch_lines(["*test database test_app_sharda on * (created, dropped)"])
    assert "test_app_sharda" not in databases(pg_server)


def test_an_unmarked_database_a_killed_run_left_is_refused_with_how_to_drop_it(
    inner: pytest.Pytester, pg_server: PostgresServer, cleanup: list[str]
) -> None:
    cleanup.append("test_app")
    admin(pg_server, "CREATE DATABASE test_app")  # killed before its comment
    inner.makepyfile(ONE_TEST)
    for options in [(), ("--peewee-drop-stale",)]:
        result = inner.runpytest(*options)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stdout.fnmatch_lines(['*it has no comment*: DROP DATABASE "test_app";*'])
    assert "test_app" in databases(pg_server)
