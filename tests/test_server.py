"""PostgresServer against real PostgreSQL processes: start, query, stop, template cache, binaries, attach mode."""

from __future__ import annotations

import contextlib
import os
import pathlib
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator

import psycopg2
import pytest

from peewee_async_testing import server as server_module
from peewee_async_testing.exceptions import ServerError
from peewee_async_testing.server import BINDIR_ENV, CACHE_DIR_ENV, DSN_ENV, OS_USER_ENV, PostgresServer, find_bindir

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user")


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """One template cache for the tests that do not care about it: a single initdb for the module."""
    return tmp_path_factory.mktemp("template-cache")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, shared_cache: pathlib.Path) -> None:
    for name in (DSN_ENV, BINDIR_ENV, OS_USER_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(CACHE_DIR_ENV, str(shared_cache))


@pytest.fixture
def scratch(monkeypatch: pytest.MonkeyPatch) -> Iterator[pathlib.Path]:
    """A folder, readable by PostgreSQL's OS user, where the servers of this test make their temporary folder."""
    folder = pathlib.Path(tempfile.mkdtemp(prefix="peewee-async-testing-scratch-"))
    folder.chmod(0o755)
    monkeypatch.setattr(server_module, "_temp_parent", lambda: str(folder))
    yield folder
    shutil.rmtree(folder)


@pytest.fixture
def fake_bindir(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[pathlib.Path]:
    """A world-readable bindir whose initdb makes an empty data folder; each test writes its own postgres."""
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    folder = pathlib.Path(tempfile.mkdtemp(prefix="peewee-async-testing-fakebin-"))
    folder.chmod(0o755)
    _write_script(folder / "initdb", 'mkdir -p "$2"')
    yield folder
    shutil.rmtree(folder)


def _write_script(path: pathlib.Path, body: str) -> None:
    path.write_text(
        f'#!/bin/bash\nif [ "$1" = "--version" ]; then echo "postgres (PostgreSQL) 99.0"; exit 0; fi\n{body}\n'
    )
    path.chmod(0o755)


def _fetch(sql: str, **connect: object) -> object:
    """Run ``sql`` in autocommit mode and return the first column of its first row (None if no rows)."""
    with contextlib.closing(psycopg2.connect(**connect)) as connection:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchone()[0] if cursor.description else None


def _postmaster_pid(server: PostgresServer) -> int:
    assert server.socket_dir is not None
    return int((server.socket_dir / "data" / "postmaster.pid").read_text().splitlines()[0])


def _processes_mentioning(text: str) -> list[int]:
    """Return the PIDs of the processes whose command line contains ``text``."""
    pids = []
    for cmdline in pathlib.Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if text.encode() in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
    return pids


def _assert_gone(pid: int, folder: pathlib.Path) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert _processes_mentioning(str(folder)) == []
    assert not folder.exists()


def test_server_answers_over_tcp_and_the_unix_socket() -> None:
    with PostgresServer() as server:
        assert (server.host, server.user, server.password, server.attached) == ("127.0.0.1", "postgres", None, False)
        assert server.dsn == f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
        assert _fetch("SELECT inet_server_addr()", dsn=server.dsn) == "127.0.0.1"
        unix = {"host": str(server.socket_dir), "port": server.port, "user": "postgres", "dbname": "postgres"}
        assert _fetch("SELECT inet_server_addr()", **unix) is None  # NULL: not a TCP connection
        assert server.version is not None
        assert str(_fetch("SHOW server_version", dsn=server.dsn)).startswith(server.version)


def test_durability_settings_are_off() -> None:
    with PostgresServer() as server:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            assert _fetch(f"SHOW {setting}", dsn=server.dsn) == "off"


def test_connect_params_reach_the_named_database() -> None:
    with PostgresServer() as server:
        _fetch("CREATE DATABASE app", dsn=server.dsn)
        params = server.connect_params("app")
        assert params == {
            "database": "app",
            "host": "127.0.0.1",
            "port": server.port,
            "user": "postgres",
            "password": None,
        }
        assert _fetch("SELECT current_database()", **params) == "app"


def test_exit_stops_postgres_and_removes_the_folder() -> None:
    with PostgresServer() as server:
        pid, folder = _postmaster_pid(server), server.socket_dir
        assert folder is not None
        os.kill(pid, 0)  # alive
        assert _processes_mentioning(str(folder))
    _assert_gone(pid, folder)
    assert server.socket_dir is None


def test_exit_cleans_up_when_the_body_raises() -> None:
    seen: list[tuple[int, pathlib.Path]] = []

    def body() -> None:
        with PostgresServer() as server:
            assert server.socket_dir is not None
            seen.append((_postmaster_pid(server), server.socket_dir))
            raise RuntimeError("body failed")

    with pytest.raises(RuntimeError, match="body failed"):
        body()
    _assert_gone(*seen[0])


def test_start_and_stop_without_with_and_stop_twice() -> None:
    server = PostgresServer()
    with pytest.raises(ServerError, match="not running"):
        server.dsn  # noqa: B018
    server.start()
    try:
        assert "running" in repr(server)
        assert _fetch("SELECT 1", dsn=server.dsn) == 1
        with pytest.raises(ServerError, match="already running"):
            server.start()
        pid, folder = _postmaster_pid(server), server.socket_dir
    finally:
        server.stop()
    server.stop()
    assert folder is not None
    _assert_gone(pid, folder)
    assert "stopped" in repr(server)
    with pytest.raises(ServerError, match="not running"):
        server.connect_params("postgres")


def test_template_is_made_once_then_copied(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    with PostgresServer() as first:
        assert first.from_template is False
        _fetch("CREATE TABLE written_by_first (id int)", dsn=first.dsn)
        assert _fetch("SELECT to_regclass('written_by_first') IS NULL", dsn=first.dsn) is False
    assert len(list((tmp_path / "cache").iterdir())) == 1
    with PostgresServer() as second:
        assert second.from_template is True
        assert _fetch("SELECT to_regclass('written_by_first') IS NULL", dsn=second.dsn) is True


def test_concurrent_cold_starts_leave_one_template(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    servers = [PostgresServer(), PostgresServer()]
    threads = [threading.Thread(target=server.start) for server in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        for server in servers:
            assert _fetch("SELECT 1", dsn=server.dsn) == 1
    finally:
        for server in servers:
            server.stop()
    assert len(list((tmp_path / "cache").iterdir())) == 1  # no staging copy left behind


def test_publishing_a_template_twice_keeps_the_first(tmp_path: pathlib.Path) -> None:
    for name in ("first", "second"):
        (tmp_path / name / "data").mkdir(parents=True)
        (tmp_path / name / "data" / name).touch()
    target = tmp_path / "cache" / "template"
    server_module._publish_template(tmp_path / "first", "1.0", target)
    server_module._publish_template(tmp_path / "second", "2.0", target)
    with tarfile.open(target / server_module.ARCHIVE) as archive:
        assert sorted(archive.getnames()) == ["data", "data/first"]
    assert (target / "version").read_text() == "1.0"
    assert [path.name for path in target.parent.iterdir()] == ["template"]


def test_a_damaged_template_falls_back_to_initdb(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    with PostgresServer():
        pass
    (template,) = (tmp_path / "cache").iterdir()
    (template / server_module.ARCHIVE).write_bytes(b"not a tar archive")
    with PostgresServer() as server:
        assert server.from_template is False
        assert _fetch("SELECT 1", dsn=server.dsn) == 1
    with PostgresServer() as server:
        assert server.from_template is True, "the damaged template was not replaced"


@as_root
def test_root_runs_postgres_as_an_unprivileged_user() -> None:
    try:
        expected = pwd.getpwnam("postgres")
    except KeyError:
        expected = pwd.getpwnam("nobody")
    with PostgresServer() as server:
        status = pathlib.Path(f"/proc/{_postmaster_pid(server)}/status").read_text()
        uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
        assert uids == [str(expected.pw_uid)] * 4
        assert server.socket_dir is not None
        assert (server.socket_dir / "data").stat().st_uid == expected.pw_uid


@as_root
def test_os_user_setting_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(OS_USER_ENV, "nobody")
    with PostgresServer() as server:
        status = pathlib.Path(f"/proc/{_postmaster_pid(server)}/status").read_text()
        assert f"Uid:\t{pwd.getpwnam('nobody').pw_uid}\t" in status
        assert _fetch("SELECT 1", dsn=server.dsn) == 1
    monkeypatch.setenv(OS_USER_ENV, "no-such-user-here")
    with pytest.raises(ServerError, match="no-such-user-here"):
        PostgresServer().start()


def test_early_exit_is_retried_then_reported(fake_bindir: pathlib.Path, scratch: pathlib.Path) -> None:
    attempts = fake_bindir / "attempts"
    attempts.touch(mode=0o666)
    attempts.chmod(0o666)
    _write_script(
        fake_bindir / "postgres", f'echo attempt >> {attempts}\necho "FATAL:  boom from fake postgres"\nexit 1'
    )
    with pytest.raises(ServerError, match=r"(?s)exited early 3 times.*boom from fake postgres"):
        PostgresServer(bindir=fake_bindir).start()
    assert attempts.read_text().count("attempt") == 3
    assert list(scratch.iterdir()) == []


def test_start_timeout_kills_postgres_and_cleans_up(fake_bindir: pathlib.Path, scratch: pathlib.Path) -> None:
    _write_script(fake_bindir / "postgres", 'echo "starting slowly"\nexec -a "fake-postgres $*" sleep 60')
    server = PostgresServer(bindir=fake_bindir, timeout=0.2)
    with pytest.raises(ServerError, match=r"(?s)not ready before the start timeout.*starting slowly"):
        server.start()
    assert _processes_mentioning(f"fake-postgres -D {scratch}") == []
    assert list(scratch.iterdir()) == []


def test_explicit_bindir_without_binaries_is_an_error(tmp_path: pathlib.Path, scratch: pathlib.Path) -> None:
    with pytest.raises(ServerError, match=re.escape(f"bindir= names '{tmp_path}'")):
        find_bindir(tmp_path)
    with pytest.raises(ServerError, match=re.escape(str(tmp_path))):
        PostgresServer(bindir=tmp_path).start()
    assert list(scratch.iterdir()) == []


def test_env_bindir_without_binaries_is_not_skipped(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BINDIR_ENV, str(tmp_path))
    with pytest.raises(ServerError, match=re.escape(f"{BINDIR_ENV} names '{tmp_path}'")):
        find_bindir()


def test_env_bindir_is_honoured_and_explicit_wins(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = find_bindir()
    for name in ("initdb", "postgres"):
        (tmp_path / name).symlink_to(real / name)
    monkeypatch.setenv(BINDIR_ENV, str(tmp_path))
    assert find_bindir() == tmp_path.resolve()
    assert find_bindir(real) == real


def _fake_bin(folder: pathlib.Path, names: tuple[str, ...] = ("initdb", "postgres")) -> pathlib.Path:
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).touch()
        (folder / name).chmod(stat.S_IRWXU)
    return folder


def test_nothing_found_says_how_to_get_postgresql(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServerError) as raised:
        find_bindir(patterns=[str(tmp_path / "nothing-*" / "bin")])
    message = str(raised.value)
    for expected in ("apt-get install postgresql", "brew install postgresql", BINDIR_ENV, DSN_ENV, "nothing-*"):
        assert expected in message


def test_patterns_prefer_the_highest_version(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    for version in ("9", "10"):
        _fake_bin(tmp_path / "pg" / version / "bin")
    _fake_bin(tmp_path / "pg" / "11" / "bin", ("initdb",))  # incomplete: skipped
    assert find_bindir(patterns=[str(tmp_path / "pg" / "*" / "bin")]) == (tmp_path / "pg" / "10" / "bin").resolve()


def test_pg_config_comes_before_initdb_on_path(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    on_path, from_pg_config, linked = tmp_path / "path", _fake_bin(tmp_path / "a"), _fake_bin(tmp_path / "b")
    on_path.mkdir()
    (on_path / "initdb").symlink_to(linked / "initdb")
    monkeypatch.setenv("PATH", str(on_path))
    assert find_bindir(patterns=()) == linked.resolve()  # the symlink is resolved to the folder holding both binaries
    (on_path / "pg_config").write_text(f"#!/bin/sh\necho {from_pg_config}\n")
    (on_path / "pg_config").chmod(0o755)
    assert find_bindir(patterns=()) == from_pg_config.resolve()


def test_attach_mode_starts_nothing_and_leaves_the_server_running(
    monkeypatch: pytest.MonkeyPatch, scratch: pathlib.Path
) -> None:
    with PostgresServer() as other:
        monkeypatch.setenv(DSN_ENV, other.dsn)
        with PostgresServer() as attached:
            assert attached.attached is True
            assert (attached.port, attached.socket_dir, attached.bindir, attached.version) == (
                other.port,
                None,
                None,
                None,
            )
            assert list(scratch.iterdir()) == [other.socket_dir]
            assert _fetch("SELECT 1", **attached.connect_params("postgres")) == 1
        assert _fetch("SELECT 1", dsn=other.dsn) == 1


def test_attach_dsn_is_parsed_and_the_password_stays_out_of_repr() -> None:
    server = PostgresServer(dsn="postgresql://alice:s%40cret@db.example:6543/app")
    assert server.attached is True
    assert server.connect_params("tests") == {
        "database": "tests",
        "host": "db.example",
        "port": 6543,
        "user": "alice",
        "password": "s@cret",
    }
    assert server.database == "app"
    assert "cret" not in repr(server)
    assert "db.example:6543" in repr(server)
    bare = PostgresServer(dsn="postgresql://db.example")
    assert (bare.port, bare.user, bare.password) == (5432, "postgres", None)
    with pytest.raises(ServerError, match="postgresql://"):
        PostgresServer(dsn="mysql://root:hunter2@db.example/app")


def test_a_server_whose_python_process_was_killed_is_reaped_by_the_next_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DSN_ENV, raising=False)
    script = (
        "import time\n"
        "from peewee_async_testing import PostgresServer\n"
        "server = PostgresServer()\n"
        "server.start()\n"
        "print(server.socket_dir, flush=True)\n"
        "time.sleep(60)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    folder = pathlib.Path(owner.stdout.readline().strip())
    postmaster = int((folder / "data" / "postmaster.pid").read_text().splitlines()[0])
    owner.kill()  # no chance to stop its server
    owner.wait()
    owner.stdout.close()
    assert folder.is_dir()
    assert _running(postmaster)
    with PostgresServer():
        assert not folder.exists()
    for _ in range(500):  # sent an immediate shutdown: give it a moment to exit
        if not _running(postmaster):
            break
        time.sleep(0.01)
    assert not _running(postmaster)


def _running(pid: int) -> bool:
    try:
        status = pathlib.Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "zombie" not in status.split("State:")[1].split("\n")[0].lower()
