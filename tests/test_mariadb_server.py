"""MariaDBServer against real MariaDB processes: start, stop, the cached data folder, binaries, the OS account,
readiness and the port, attach, and its lifetime (a killed owner's server is removed, an orphan reaped)."""

from __future__ import annotations

import contextlib
import os
import pathlib
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import peewee_async
import pymysql
import pytest

from peewee_async_testing import MariaDBServer, ServerError
from peewee_async_testing import server as server_module
from peewee_async_testing.binaries import find_mariadb
from peewee_async_testing.exceptions import ConfigurationError
from peewee_async_testing.mariadb import CACHE_DIR_ENV, MARIADB_BINDIR_ENV, MARIADB_OS_USER_ENV, MYSQL_DSN_ENV

from .helpers import run_on_own_loop
from .test_server import _processes_mentioning
from .test_server_lifetime import DEADLINE, _running, _wait_for

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="only root runs MariaDB as another user")


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """One cache for the tests that do not care about it: a single mariadb-install-db for the module."""
    return tmp_path_factory.mktemp("mariadb-cache")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, shared_cache: pathlib.Path) -> None:
    for name in (MYSQL_DSN_ENV, MARIADB_BINDIR_ENV, MARIADB_OS_USER_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(CACHE_DIR_ENV, str(shared_cache))


@pytest.fixture
def scratch(monkeypatch: pytest.MonkeyPatch) -> Iterator[pathlib.Path]:
    """A folder, readable by MariaDB's OS user, where the servers of this test (and of the processes it starts,
    ``$LIFETIME_PARENT``) make their folders: no other session's reaper looks there."""
    folder = pathlib.Path(tempfile.mkdtemp(prefix="pat-mariadb-scratch-", dir=server_module._temp_parent()))
    folder.chmod(0o755)
    monkeypatch.setattr(server_module, "_temp_parent", lambda: str(folder))
    monkeypatch.setenv("LIFETIME_PARENT", str(folder))
    yield folder
    shutil.rmtree(folder)


@pytest.fixture
def fake_bindir(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[pathlib.Path]:
    """A world-readable folder whose mariadb-install-db makes an empty data folder; each test writes its mariadbd."""
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    folder = pathlib.Path(tempfile.mkdtemp(prefix="peewee-async-testing-fakemariadb-"))
    folder.chmod(0o755)
    _write_script(
        folder / "mariadb-install-db", 'for a in "$@"; do case $a in --datadir=*) mkdir -p "${a#*=}";; esac; done'
    )
    yield folder
    shutil.rmtree(folder)


def _write_script(path: pathlib.Path, body: str) -> None:
    path.write_text(
        f'#!/bin/bash\nif [ "$1" = "--version" ]; then echo "mariadbd  Ver 99.0-MariaDB"; exit 0; fi\n{body}\n'
    )
    path.chmod(0o755)


def _fetch(sql: str, **connect: Any) -> Any:
    """Run ``sql`` and return the first column of its first row (None if no rows)."""
    with contextlib.closing(pymysql.connect(**connect)) as connection, connection.cursor() as cursor:
        cursor.execute(sql)
        row = cursor.fetchone()
        return row[0] if row else None


async def _first(database: Any, cursor: Any) -> Any:
    return (await cursor.fetchone())[0]


def _mariadbd_pid(server: MariaDBServer) -> int:
    assert server.socket_dir is not None
    return int((server.socket_dir / "mariadbd.pid").read_text())


def _uid_of(pid: int) -> int:
    status = pathlib.Path(f"/proc/{pid}/status").read_text()
    uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
    assert len(set(uids)) == 1, uids
    return int(uids[0])


def _gone(pid: int, folder: pathlib.Path) -> bool:
    """Whether mariadbd ``pid``, every process that names its folder (its watchdog) and the folder are gone."""
    return not _running(pid) and not _processes_mentioning(str(folder)) and not folder.exists()


def _assert_gone(pid: int, folder: pathlib.Path) -> None:
    assert not _running(pid), f"mariadbd {pid} still runs"
    assert _processes_mentioning(str(folder)) == []
    assert not folder.exists()


# -- start, connect, stop --------------------------------------------------------------------------------------------


def test_server_answers_over_tcp_and_the_unix_socket(scratch: pathlib.Path) -> None:
    with MariaDBServer() as server:
        assert (server.host, server.user, server.password, server.database) == ("127.0.0.1", "root", None, None)
        assert (server.attached, server.origin) == (False, None)
        assert server.dsn == f"mysql://root@127.0.0.1:{server.port}/"
        assert repr(server) == f"<MariaDBServer running 127.0.0.1:{server.port}>"
        tcp = server.connect_params(None)
        assert _fetch("SELECT @@port", **tcp) == server.port
        assert _fetch("SELECT user()", **tcp) == "root@127.0.0.1"
        assert server.socket is not None
        assert server.socket.parent == server.socket_dir
        assert _fetch("SELECT user()", unix_socket=str(server.socket), user="root") == "root@localhost"
        assert server.version is not None
        assert _fetch("SELECT version()", **tcp) == server.version
        assert server.socket_dir is not None
        assert server.socket_dir.parent == scratch
        log = (server.socket_dir / "mariadb.log").read_text()
        assert "ready for connections" in log
        assert "[ERROR]" not in log
        assert "Permission denied" not in log, log


def test_no_config_file_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    home = pathlib.Path(tempfile.mkdtemp(prefix="peewee-async-testing-mysql-home-"))
    try:
        home.chmod(0o755)
        (home / "my.cnf").write_text("[mysqld]\nmax_connections = 77\ninnodb_page_size = 4k\n")  # a 4k data folder
        (home / "my.cnf").chmod(0o644)
        with monkeypatch.context() as patch:
            patch.setenv("MYSQL_HOME", str(home))  # where MariaDB's programs look for a my.cnf of their own
            patch.setenv(CACHE_DIR_ENV, str(home / "cache"))  # mariadb-install-db runs too
            with MariaDBServer() as server:
                assert _fetch("SELECT @@max_connections", **server.connect_params(None)) != 77
    finally:
        shutil.rmtree(home)


def test_durability_is_off() -> None:
    with MariaDBServer() as server:
        params = server.connect_params(None)
        assert _fetch("SELECT @@innodb_flush_log_at_trx_commit", **params) == 0
        assert _fetch("SELECT @@log_bin", **params) == 0
        assert _fetch("SELECT @@bind_address", **params) == "127.0.0.1"
        assert _fetch("SELECT @@character_set_server", **params) == "utf8mb4"
        assert server.socket_dir is not None
        assert _fetch("SELECT @@datadir", **params) == f"{server.socket_dir / 'data'}/"


def test_a_database_is_created_and_reached_by_peewee_async() -> None:
    with MariaDBServer() as server:
        connection = server.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute("CREATE DATABASE test_app")
        finally:
            connection.close()
        database = peewee_async.MySQLDatabase(**server.connect_params("test_app"))

        async def write_and_read() -> object:
            try:
                await database.aio_execute_sql("CREATE TABLE note (id INT PRIMARY KEY, body TEXT)")
                await database.aio_execute_sql("INSERT INTO note VALUES (1, 'Радиоточка')")
                return await database.aio_execute_sql("SELECT body FROM note", fetch_results=_first)
            finally:
                await database.aio_close()

        assert run_on_own_loop(write_and_read()) == "Радиоточка"
        with contextlib.closing(server.connect("test_app")) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT database(), count(*) FROM note")
            assert cursor.fetchone() == ("test_app", 1)


def test_exit_stops_mariadbd_and_removes_the_folder() -> None:
    with MariaDBServer() as server:
        pid, folder, port = _mariadbd_pid(server), server.socket_dir, server.port
        assert folder is not None
        assert _running(pid)
        assert server_module.is_throwaway("127.0.0.1", port)
    assert folder is not None
    _assert_gone(pid, folder)
    assert not server_module.is_throwaway("127.0.0.1", port)
    assert repr(server) == f"<MariaDBServer stopped 127.0.0.1:{port}>"
    with pytest.raises(ServerError, match=re.escape("not running: call start() or use `with MariaDBServer()")):
        server.connect_params("test_app")


def test_exit_cleans_up_when_the_body_raises() -> None:
    with pytest.raises(RuntimeError, match="boom"), MariaDBServer() as server:
        pid, folder = _mariadbd_pid(server), server.socket_dir
        raise RuntimeError("boom")
    assert folder is not None
    _assert_gone(pid, folder)


def test_start_and_stop_without_with_and_stop_twice() -> None:
    server = MariaDBServer()
    server.stop()  # before a start: nothing to do
    server.start()
    with pytest.raises(ServerError, match="already running"):
        server.start()
    pid, folder = _mariadbd_pid(server), server.socket_dir
    server.stop()
    server.stop()
    assert folder is not None
    _assert_gone(pid, folder)
    with pytest.raises(ServerError, match=r"(?s)Cannot connect to the server of .*Connection refused"):
        MariaDBServer(dsn=f"mysql://root@127.0.0.1:{server.port}/").connect()


def test_two_servers_run_at_once_on_their_own_ports_and_folders(mysql_server: MariaDBServer) -> None:
    with MariaDBServer() as other:
        assert other.port != mysql_server.port
        assert other.socket_dir != mysql_server.socket_dir
        with contextlib.closing(other.connect()) as connection, connection.cursor() as cursor:
            cursor.execute("CREATE DATABASE only_on_the_other")
        mine = mysql_server.connect_params(None)
        assert _fetch("SHOW DATABASES LIKE 'only_on_the_other'", **mine) is None
        assert _fetch("SHOW DATABASES LIKE 'only_on_the_other'", **other.connect_params(None)) == "only_on_the_other"


# -- the cached data folder ------------------------------------------------------------------------------------------


def test_the_data_folder_is_made_once_then_copied(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    with MariaDBServer() as first:
        assert first.from_template is False
        with contextlib.closing(first.connect()) as connection, connection.cursor() as cursor:
            cursor.execute("CREATE DATABASE made_after_the_copy")  # not in the cache: it was taken before
    (cached,) = (tmp_path / "cache").iterdir()
    assert cached.name.startswith("mariadb-")
    assert (cached / "version").read_text() == first.version
    archive = (cached / "data.tar").stat()
    with MariaDBServer() as second:
        assert second.from_template is True
        assert second.version == first.version
        assert _fetch("SHOW DATABASES LIKE 'made_after_the_copy'", **second.connect_params(None)) is None
    assert [path.name for path in (tmp_path / "cache").iterdir()] == [cached.name]
    assert (cached / "data.tar").stat().st_mtime_ns == archive.st_mtime_ns  # not made again
    assert archive.st_size < 40_000_000  # small files: about 20 MB


def test_a_failing_mariadb_install_db_is_named_and_leaves_nothing(
    fake_bindir: pathlib.Path, scratch: pathlib.Path
) -> None:
    _write_script(fake_bindir / "mariadb-install-db", 'echo "[ERROR] boom from fake install-db" >&2\nexit 3')
    _write_script(fake_bindir / "mariadbd", "exit 1")
    with pytest.raises(ServerError, match=r"mariadb-install-db failed with exit code 3.*\n.*boom from fake install-db"):
        MariaDBServer(bindir=fake_bindir).start()
    assert list(scratch.iterdir()) == []


# -- the OS account --------------------------------------------------------------------------------------------------


@as_root
def test_root_runs_mariadb_as_the_mysql_account() -> None:
    try:
        expected = pwd.getpwnam("mysql")
    except KeyError:
        expected = pwd.getpwnam("nobody")
    with MariaDBServer() as server:
        assert _uid_of(_mariadbd_pid(server)) == expected.pw_uid
        assert server.socket_dir is not None
        assert (server.socket_dir / "data").stat().st_uid == expected.pw_uid


@as_root
def test_the_os_account_setting_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MARIADB_OS_USER_ENV, "nobody")
    with MariaDBServer() as server:
        assert _uid_of(_mariadbd_pid(server)) == pwd.getpwnam("nobody").pw_uid
        assert _fetch("SELECT 1", **server.connect_params(None)) == 1
    monkeypatch.setenv(MARIADB_OS_USER_ENV, "no-such-user-here")
    with pytest.raises(
        ServerError, match=f"MariaDB refuses to run as root.*'no-such-user-here'.*{MARIADB_OS_USER_ENV}"
    ):
        MariaDBServer().start()


# -- the binaries ----------------------------------------------------------------------------------------------------


def _fake_bin(folder: pathlib.Path, *names: str) -> pathlib.Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text("#!/bin/sh\n")
        (folder / name).chmod(0o755)
    return folder


def test_nothing_found_says_how_to_get_mariadb(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(_fake_bin(tmp_path / "empty")))
    with pytest.raises(ServerError, match=r"(?s)Cannot find the MariaDB server.*apt-get install mariadb-server.*"):
        find_mariadb(places=())
    with pytest.raises(ServerError, match=MARIADB_BINDIR_ENV):
        find_mariadb(places=())


def test_the_server_is_found_on_path_and_the_script_beside_it(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sbin, bin_ = _fake_bin(tmp_path / "usr" / "sbin", "mysqld"), _fake_bin(tmp_path / "usr" / "bin", "mysql_install_db")
    monkeypatch.setenv("PATH", str(_fake_bin(tmp_path / "empty")))
    assert find_mariadb(places=(str(sbin),)) == (sbin / "mysqld", bin_ / "mysql_install_db")
    _fake_bin(sbin, "mariadbd")  # the new name comes first
    _fake_bin(tmp_path / "on-path", "mariadbd", "mariadb-install-db")
    monkeypatch.setenv("PATH", str(tmp_path / "on-path"))
    assert find_mariadb(places=(str(sbin),)) == (
        tmp_path / "on-path" / "mariadbd",
        tmp_path / "on-path" / "mariadb-install-db",
    )


def test_a_server_without_its_install_script_is_named(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(_fake_bin(tmp_path / "empty")))
    lonely = _fake_bin(tmp_path / "lonely", "mariadbd")
    with pytest.raises(ServerError, match=rf"Found the MariaDB server {lonely}/mariadbd, but not mariadb-install-db"):
        find_mariadb(lonely)


def test_explicit_and_env_bindir_without_the_server_are_errors(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, scratch: pathlib.Path
) -> None:
    real, _ = find_mariadb()
    with pytest.raises(ServerError, match=re.escape(f"bindir= names '{tmp_path}', which holds neither mariadbd")):
        MariaDBServer(bindir=tmp_path).start()
    monkeypatch.setenv(MARIADB_BINDIR_ENV, str(tmp_path))
    with pytest.raises(ServerError, match=re.escape(f"${MARIADB_BINDIR_ENV} names '{tmp_path}'")):
        MariaDBServer().start()
    assert list(scratch.iterdir()) == []
    monkeypatch.setenv(MARIADB_BINDIR_ENV, str(real.parent))
    assert find_mariadb()[0] == real
    explicit = _fake_bin(tmp_path / "explicit", "mariadbd", "mariadb-install-db")
    assert find_mariadb(explicit) == (explicit / "mariadbd", explicit / "mariadb-install-db")


# -- readiness and the port ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _taken_port() -> Iterator[int]:
    """A port that another socket listens on, as when another process takes the free port before mariadbd."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def _counting_mariadbd(fake_bindir: pathlib.Path) -> pathlib.Path:
    """A fake mariadbd that records each attempt and exits at once, as a rejected option makes it."""
    attempts = fake_bindir / "attempts"
    attempts.touch(mode=0o666)
    attempts.chmod(0o666)
    _write_script(
        fake_bindir / "mariadbd", f'echo attempt >> {attempts}\necho "[ERROR] boom from fake mariadbd"\nexit 1'
    )
    return attempts


def test_an_early_exit_is_reported_at_once(fake_bindir: pathlib.Path, scratch: pathlib.Path) -> None:
    attempts = _counting_mariadbd(fake_bindir)
    with pytest.raises(ServerError, match=r"exited as it started; the end of its log says why:\n\[ERROR\] boom"):
        MariaDBServer(bindir=fake_bindir).start()
    assert attempts.read_text().count("attempt") == 1
    assert list(scratch.iterdir()) == []


def test_an_early_exit_on_a_taken_port_is_retried_then_reported(
    fake_bindir: pathlib.Path, scratch: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = _counting_mariadbd(fake_bindir)
    with _taken_port() as taken:
        monkeypatch.setattr(server_module, "_free_port", lambda: taken)
        with pytest.raises(ServerError, match=r"(?s)exited early 3 times, its port taken.*boom from fake mariadbd"):
            MariaDBServer(bindir=fake_bindir).start()
    assert attempts.read_text().count("attempt") == 3
    assert list(scratch.iterdir()) == []


def test_a_port_taken_before_mariadbd_binds_it_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    handed: list[int] = []
    free_port = server_module._free_port

    def taken_first() -> int:
        handed.append(free_port() if handed else taken)
        return handed[-1]

    with _taken_port() as taken:
        monkeypatch.setattr(server_module, "_free_port", taken_first)
        with MariaDBServer() as server:
            assert _fetch("SELECT @@port", **server.connect_params(None)) == server.port
            assert server.port == handed[1] != taken == handed[0]


def test_start_timeout_kills_mariadbd_and_cleans_up(fake_bindir: pathlib.Path, scratch: pathlib.Path) -> None:
    _write_script(fake_bindir / "mariadbd", 'echo "starting slowly"\nexec -a "fake-mariadbd $*" sleep 60')
    with pytest.raises(ServerError, match=r"(?s)not ready before the start timeout.*MariaDBServer\(timeout=.*slowly"):
        MariaDBServer(bindir=fake_bindir, timeout=0.2).start()
    assert _processes_mentioning(f"fake-mariadbd --no-defaults --datadir={scratch}") == []
    assert list(scratch.iterdir()) == []


# -- attached --------------------------------------------------------------------------------------------------------


def test_attach_mode_starts_nothing_and_leaves_the_server_running(
    monkeypatch: pytest.MonkeyPatch, scratch: pathlib.Path
) -> None:
    with MariaDBServer() as other:
        monkeypatch.setenv(MYSQL_DSN_ENV, other.dsn)
        with MariaDBServer() as attached:
            assert (attached.attached, attached.origin) == (True, f"${MYSQL_DSN_ENV}")
            assert (attached.port, attached.socket_dir, attached.version) == (other.port, None, None)
            assert attached.dsn == other.dsn
            assert list(scratch.iterdir()) == [other.socket_dir]
            assert _fetch("SELECT 1", **attached.connect_params(None)) == 1
        assert _fetch("SELECT 1", **other.connect_params(None)) == 1


def test_an_attached_dsn_masks_its_password_everywhere(mysql_server: MariaDBServer) -> None:
    with contextlib.closing(mysql_server.connect()) as connection, connection.cursor() as cursor:
        cursor.execute("CREATE USER IF NOT EXISTS app@'%' IDENTIFIED BY 's3cr@t'")
        cursor.execute("GRANT ALL ON *.* TO app@'%'")
    dsn = f"mysql://app:s3cr%40t@127.0.0.1:{mysql_server.port}/shop"
    server = MariaDBServer(dsn=dsn, origin="--peewee-dsn")
    assert (server.host, server.port, server.user, server.password, server.database) == (
        "127.0.0.1",
        mysql_server.port,
        "app",
        "s3cr@t",
        "shop",
    )
    assert server.connect_params("test_shop")["database"] == "test_shop"
    for shown in (repr(server), repr(server.dsn), repr(server.password), repr(server.connect_params("x"))):
        assert "s3cr" not in shown, shown
    assert repr(server) == f"<MariaDBServer attached mysql://app:***@127.0.0.1:{mysql_server.port}/shop>"
    with contextlib.closing(server.connect()) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT current_user()")
        assert cursor.fetchone() == ("app@%",)
    wrong = MariaDBServer(dsn=f"mysql://app:not-s3cr%40t@127.0.0.1:{mysql_server.port}/", origin="--peewee-dsn")
    with pytest.raises(ServerError, match=r"(?s)Access denied.*Check that it runs and that the DSN is right") as raised:
        wrong.connect()
    assert "s3cr" not in str(raised.value)
    assert f"--peewee-dsn (mysql://app:***@127.0.0.1:{mysql_server.port}/)" in str(raised.value)


def test_an_attached_dsn_defaults_and_refusals() -> None:
    bare = MariaDBServer(dsn="mysql://db.example")
    assert (bare.host, bare.port, bare.user, bare.password, bare.database) == ("db.example", 3306, "root", None, None)
    assert bare.dsn == "mysql://root@db.example:3306/"
    assert bare.origin == "MariaDBServer(dsn=...)"
    with pytest.raises(ConfigurationError, match="is not a MySQL DSN") as raised:
        MariaDBServer(dsn="postgresql://app:hunter2@db.example/app")
    assert "hunter2" not in str(raised.value)


# -- its lifetime ----------------------------------------------------------------------------------------------------

OWNER = """
import os
import sys
from peewee_async_testing import MariaDBServer, server as server_module

server_module._temp_parent = lambda: os.environ["LIFETIME_PARENT"]
server = MariaDBServer()
server.start()
print(server.socket_dir, server._watchdog.process.pid, flush=True)
sys.stdin.read()  # until the test closes it
server.stop()
"""


@contextlib.contextmanager
def _owner() -> Iterator[tuple[subprocess.Popen[str], pathlib.Path, int, int]]:
    """A Python process owning a MariaDB server until its standard input closes: its folder, mariadbd, watchdog."""
    owner = subprocess.Popen([sys.executable, "-c", OWNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert owner.stdin is not None
    assert owner.stdout is not None
    try:
        folder, watchdog = owner.stdout.readline().split()
        yield owner, pathlib.Path(folder), int((pathlib.Path(folder) / "mariadbd.pid").read_text()), int(watchdog)
    finally:
        with contextlib.suppress(BrokenPipeError):
            owner.stdin.close()
        owner.wait(DEADLINE)
        owner.stdout.close()


def test_the_process_group_of_the_caller_holds_no_process_of_the_server() -> None:
    with MariaDBServer() as server:
        assert server._watchdog is not None
        for pid in (_mariadbd_pid(server), server._watchdog.process.pid):
            assert os.getpgid(pid) != os.getpgrp()
            assert os.getsid(pid) != os.getsid(0)


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_killed_owner_takes_its_server_along(scratch: pathlib.Path, signal_number: int) -> None:
    with _owner() as (owner, folder, mariadbd, _):
        assert _running(mariadbd)
        assert folder.parent == scratch
        owner.send_signal(signal_number)  # no chance to stop its server
        owner.wait()
        _wait_for(lambda: _gone(mariadbd, folder), "the killed owner's mariadbd, watchdog and folder went")


def test_a_server_whose_owner_and_watchdog_were_killed_is_reaped_by_the_next_start(scratch: pathlib.Path) -> None:
    with _owner() as (owner, folder, mariadbd, watchdog):
        os.kill(watchdog, signal.SIGKILL)
        _wait_for(lambda: not _running(watchdog), "the watchdog died")
        owner.kill()  # neither is left to stop the server
        owner.wait()
        assert folder.is_dir()
        assert _running(mariadbd)
        with MariaDBServer():
            assert not folder.exists()
        _wait_for(lambda: not _running(mariadbd), "the orphan's mariadbd exited")
