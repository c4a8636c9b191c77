"""The throwaway server belongs to its session: Ctrl-C stops the tests and not it, a killed session takes it
along within seconds, and the reaper of another session never touches a live one."""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator

import psycopg2
import pytest

from peewee_async_testing import PostgresServer
from peewee_async_testing import server as server_module
from peewee_async_testing.binaries import find_bindir
from peewee_async_testing.server import BINDIR_ENV, CACHE_DIR_ENV, DSN_ENV

from .plugin.project import APP_DB, APP_MODELS, CONFIGURED, INI
from .test_server import _processes_mentioning

DEADLINE = 60.0  # generous: the machine is shared and noisy; a pass takes well under a second

#: The servers of the processes a test starts go to the test's own folder (see ``parent``).
INNER_CONFTEST = """
import os

from peewee_async_testing import server

server._temp_parent = lambda: os.environ["LIFETIME_PARENT"]
"""

INNER_TESTS = """
import os
import pathlib

import pytest
from app.db import database

REPORT = pathlib.Path(os.environ["LIFETIME_REPORT"])


@pytest.mark.peewee_db
async def test_runs_a_query_when_interrupted():
    REPORT.write_text(str(database.connect_params["port"]))
    await database.aio_execute_sql("SELECT pg_sleep(600) /* lifetime */")


@pytest.mark.peewee_db
async def test_never_runs():
    REPORT.with_suffix(".after").touch()
"""


def _wait_for(condition: Callable[[], object], what: str, deadline: float = DEADLINE) -> None:
    """Poll ``condition`` until it holds; fail saying ``what`` was awaited if it does not before ``deadline``."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"not within {deadline:.0f} s: {what}")
        time.sleep(0.02)


def _running(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not yet waited for, does not)."""
    try:
        status = pathlib.Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "zombie" not in status.split("State:")[1].split("\n")[0].lower()


def _fetch(port: int, sql: str) -> object:
    with contextlib.closing(psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")) as conn:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchone()[0]


class Inner:
    """An inner ``python -m pytest`` session on the plugin's throwaway server, in a process group of its own as
    a terminal's foreground job is; its first test reports the server's port, then holds a query on it."""

    def __init__(self, path: pathlib.Path, *arguments: str) -> None:
        (path / "app").mkdir()
        (path / "app" / "__init__.py").touch()
        (path / "app" / "db.py").write_text(APP_DB)
        (path / "app" / "models.py").write_text(APP_MODELS)
        (path / "pytest.ini").write_text(INI.format(extra=CONFIGURED, loop="session", mode="auto"))
        (path / "conftest.py").write_text(INNER_CONFTEST)
        (path / "test_inner.py").write_text(INNER_TESTS)
        self.report = path / "report"
        env = {name: value for name, value in os.environ.items() if not name.startswith(("PYTEST_", DSN_ENV))}
        # The app's own database: nothing listens there, and the plugin must never connect to it.
        env.update(LIFETIME_REPORT=str(self.report), INNER_HOST="127.0.0.1", INNER_PORT="1")
        # SIGINT as a terminal's foreground job has it: a session started in the background by a shell without job
        # control (a CI script's `cmd &`) inherits it ignored, and Python then ignores Ctrl-C too.
        start = "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        start += "sys.argv[0] = 'pytest'; runpy.run_module('pytest', run_name='__main__', alter_sys=True)"
        command = [sys.executable, "-c", start, *arguments]
        self.process = subprocess.Popen(
            command, cwd=path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )

    def running_query(self) -> tuple[pathlib.Path, int]:
        """Wait until the first test's query runs; return the server's folder and its postmaster's pid."""

        def reported() -> bool:
            return self.report.exists() and bool(self.report.read_text())

        _wait_for(lambda: reported() or self.process.poll() is not None, "the inner test reported its server")
        if not reported():
            pytest.fail(f"the inner session ended before its test ran:\n{self.output()}")
        port = int(self.report.read_text())
        sql = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(600) /* lifetime */'"
        _wait_for(lambda: _fetch(port, sql) == 1, "the inner test's query ran")
        folder = pathlib.Path(str(_fetch(port, "SHOW data_directory"))).parent
        return folder, int((folder / "data" / "postmaster.pid").read_text().split()[0])

    def output(self) -> str:
        try:
            out, _ = self.process.communicate(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            out, _ = self.process.communicate()
            pytest.fail(f"the inner session did not end within {DEADLINE:.0f} s:\n{out.decode(errors='replace')}")
        return str(out.decode(errors="replace"))

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.communicate()


@pytest.fixture(autouse=True)
def parent(monkeypatch: pytest.MonkeyPatch) -> Iterator[pathlib.Path]:
    """A folder of the test's own for the servers' folders, here and in the processes it starts
    (``$LIFETIME_PARENT``): no other session's reaper looks there, so what removes them is what is tested."""
    folder = pathlib.Path(tempfile.mkdtemp(prefix="pat-lifetime-", dir=server_module._temp_parent()))
    folder.chmod(0o755)  # PostgreSQL's OS user reaches its folder in it
    monkeypatch.setattr(server_module, "_temp_parent", lambda: str(folder))
    monkeypatch.setenv("LIFETIME_PARENT", str(folder))
    monkeypatch.delenv(DSN_ENV, raising=False)
    yield folder
    shutil.rmtree(folder)


@pytest.fixture
def inner_session(tmp_path: pathlib.Path) -> Iterator[Callable[..., Inner]]:
    """Start an inner session (killed at the end if it still runs)."""
    started: list[Inner] = []

    def start(*arguments: str) -> Inner:
        started.append(Inner(tmp_path, *arguments))
        return started[-1]

    yield start
    for session in started:
        session.kill()


def _gone(postmaster: int, folder: pathlib.Path) -> bool:
    """Whether the server's postmaster, every process that names its folder (its watchdog) and the folder are gone."""
    return not _running(postmaster) and not _processes_mentioning(str(folder)) and not folder.exists()


@pytest.mark.parametrize("workers", [[], ["-n", "1"]], ids=["plain", "xdist"])
def test_ctrl_c_stops_the_tests_and_not_the_server_under_them(
    inner_session: Callable[..., Inner], workers: list[str]
) -> None:
    session = inner_session(*workers)
    folder, postmaster = session.running_query()
    os.killpg(session.process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
    output = session.output()
    assert "KeyboardInterrupt" in output, output
    assert session.process.returncode == pytest.ExitCode.INTERRUPTED, output
    assert " failed" not in output.splitlines()[-1], output
    assert not session.report.with_suffix(".after").exists(), f"a test ran after Ctrl-C:\n{output}"
    assert _gone(postmaster, folder), f"the server's postgres or folder outlived its session:\n{output}"


@pytest.mark.parametrize("workers", [[], ["-n", "1"]], ids=["plain", "xdist"])
@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_killed_session_takes_its_server_along(
    inner_session: Callable[..., Inner], signal_number: int, workers: list[str]
) -> None:
    session = inner_session(*workers)
    folder, postmaster = session.running_query()
    os.kill(session.process.pid, signal_number)  # pytest only, which leaves it no chance to stop its server
    session.process.wait()
    _wait_for(lambda: _gone(postmaster, folder), "the killed session's postgres and folder went")


# -- the reaper ------------------------------------------------------------------------------------------------------

OWNER = """
import os
import sys
import time
from peewee_async_testing import PostgresServer, server as server_module

server_module._temp_parent = lambda: os.environ["LIFETIME_PARENT"]
server = PostgresServer()
server.start()
if {fork} and os.fork() == 0:  # a child that outlives its parent, as multiprocessing's workers can
    time.sleep(600)
    os._exit(0)
watchdog = server._watchdog.process.pid if getattr(server, "_watchdog", None) else 0
print(server.socket_dir, server.port, watchdog, flush=True)
sys.stdin.read()  # until the test closes it
server.stop()
"""


def _unshare_permitted() -> str | None:
    """Why ``unshare --pid --fork --mount-proc`` cannot run here, or None if it can."""
    if shutil.which("unshare") is None:
        return "no unshare command"
    result = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, text=True)
    return None if result.returncode == 0 else f"unshare --pid is not permitted here: {result.stderr.strip()}"


def _dead_pid() -> int:
    """A process id that no process here has (the highest free one)."""
    pid_max = int(pathlib.Path("/proc/sys/kernel/pid_max").read_text())
    return next(pid for pid in range(pid_max - 1, 300, -1) if not pathlib.Path(f"/proc/{pid}").exists())


@contextlib.contextmanager
def _owner(*prefix: str, fork: bool = False) -> Iterator[tuple[subprocess.Popen[str], pathlib.Path, int, int]]:
    """A Python process (run by ``prefix``) that owns a throwaway server until its standard input closes; with
    ``fork``, it forks a child first (in a process group of its own: the test ends it)."""
    env = {name: value for name, value in os.environ.items() if name != DSN_ENV}
    owner = subprocess.Popen(
        [*prefix, sys.executable, "-c", OWNER.format(fork=fork)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=fork,
    )
    assert owner.stdout is not None
    assert owner.stdin is not None
    try:
        folder, port, watchdog = owner.stdout.readline().split()
        yield owner, pathlib.Path(folder), int(port), int(watchdog)
    finally:
        with contextlib.suppress(BrokenPipeError):
            owner.stdin.close()
        owner.wait(DEADLINE)
        owner.stdout.close()


def test_a_live_server_of_another_pid_namespace_survives_this_ones_reaper() -> None:
    reason = "unshare --pid needs root" if os.geteuid() != 0 else _unshare_permitted()
    if reason:
        pytest.skip(reason)
    # The owner's process id in its namespace is one that no process has here: it looks dead from here.
    in_namespace = f'echo {_dead_pid() - 1} > /proc/sys/kernel/ns_last_pid; "$@"; exit $?'
    unshare = ("unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", in_namespace, "sh")
    with _owner(*unshare) as (_, folder, port, _), PostgresServer():  # which reaps what it takes for orphans
        assert folder.is_dir(), "this namespace's reaper removed a live server's folder"
        assert _fetch(port, "SELECT 1") == 1
    assert not folder.exists()  # its owner stopped it as usual


def test_a_server_whose_owner_and_watchdog_were_killed_is_reaped_by_the_next_start() -> None:
    with _owner() as (owner, folder, _, watchdog):
        postmaster = int((folder / "data" / "postmaster.pid").read_text().split()[0])
        assert watchdog, "the server has no watchdog"
        os.kill(watchdog, signal.SIGKILL)
        _wait_for(lambda: not _running(watchdog), "the watchdog died")
        owner.kill()  # neither is left to stop the server
        owner.wait()
        assert folder.is_dir()
        assert _running(postmaster)
        with PostgresServer():
            assert not folder.exists()
        _wait_for(lambda: not _running(postmaster), "the orphan's postmaster exited")


def test_a_fork_of_the_owner_does_not_keep_its_server_alive() -> None:
    with _owner(fork=True) as (owner, folder, _, _):
        try:
            postmaster = int((folder / "data" / "postmaster.pid").read_text().split()[0])
            owner.kill()  # its fork lives on, holding whatever it inherited
            owner.wait()
            _wait_for(lambda: _gone(postmaster, folder), "the killed owner's postgres and folder went")
        finally:
            os.killpg(owner.pid, signal.SIGKILL)  # the fork


def test_a_folder_without_the_lock_file_is_not_touched(parent: pathlib.Path) -> None:
    stranger = parent / f"{server_module.FOLDER_PREFIX}someone-elses"
    stranger.mkdir()
    (stranger / "owner.pid").write_text(str(_dead_pid()))  # what the reaper once took for a dead owner
    with PostgresServer():
        pass
    assert stranger.is_dir()


# -- Ctrl-C reaches none of the server's processes -------------------------------------------------------------------


def test_no_process_of_the_server_is_in_the_callers_process_group(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """initdb, postgres and the helpers (tar, cp) that make and start the cluster, each wrapped to note its group."""
    real = find_bindir()
    wrappers = pathlib.Path(tempfile.mkdtemp(prefix="peewee-async-testing-wrappers-"))
    try:
        wrappers.chmod(0o755)
        seen = wrappers / "seen"
        seen.touch(mode=0o666)
        seen.chmod(0o666)
        for name, target in [("initdb", real / "initdb"), ("postgres", real / "postgres")] + [
            (name, pathlib.Path(str(shutil.which(name)))) for name in ("tar", "cp")
        ]:
            note = f"echo {name} $(cut -d' ' -f5 /proc/$$/stat) >> {seen}"
            (wrappers / name).write_text(f'#!/bin/sh\n{note}\nexec {target} "$@"\n')
            (wrappers / name).chmod(0o755)
        monkeypatch.setenv("PATH", f"{wrappers}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv(BINDIR_ENV, str(wrappers))
        monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
        for _ in range(2):  # initdb and cp, then tar from the template
            with PostgresServer() as server:
                assert _fetch(server.port, "SELECT 1") == 1
                assert server._watchdog is not None
                assert os.getpgid(server._watchdog.process.pid) != os.getpgrp()
        groups = [line.split() for line in seen.read_text().splitlines()]
        assert {name for name, _ in groups} == {"initdb", "postgres", "tar", "cp"}
        assert [name for name, group in groups if int(group) == os.getpgrp()] == []
    finally:
        shutil.rmtree(wrappers)


def test_removing_a_folder_follows_no_symbolic_link_swapped_in(tmp_path: pathlib.Path) -> None:
    """What the reaper or the watchdog removes is the folder it checked, even if its name or an entry in it
    became a symbolic link since (as PostgreSQL's OS user, who owns the folder, could make it)."""
    from peewee_async_testing import lifetime

    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").touch()
    folder = tmp_path / f"{server_module.FOLDER_PREFIX}swapped"
    folder.mkdir()
    lock = lifetime.lock_folder(folder)
    try:
        os.link(folder / lifetime.LOCK, victim / lifetime.LOCK)  # the victim holds the very lock file
        impostor = tmp_path / f"{server_module.FOLDER_PREFIX}impostor"  # the folder's name swapped for a link
        impostor.symlink_to(victim)
        lifetime.clean_up(impostor, lock)
        lifetime.remove_folder(impostor, lock)
        assert sorted(path.name for path in victim.iterdir()) == [lifetime.LOCK, "precious"]
        (folder / "data").symlink_to(victim)  # an entry in the folder swapped for a link
        lifetime.remove_folder(folder, lock)
        assert not folder.exists()
        assert sorted(path.name for path in victim.iterdir()) == [lifetime.LOCK, "precious"]
    finally:
        lifetime.release(lock)
