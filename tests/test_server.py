"""PostgresServer against real PostgreSQL processes: start, stop, template cache, binaries, locale, settings, attach."""

from __future__ import annotations

import contextlib
import os
import pathlib
import pwd
import re
import shutil
import socket
import stat
import tarfile
import tempfile
import threading
from collections.abc import Iterator

import psycopg2
import pytest

from peewee_async_testing import initdb as initdb_module
from peewee_async_testing import server as server_module
from peewee_async_testing.binaries import find_bindir
from peewee_async_testing.exceptions import ConfigurationError, ServerError
from peewee_async_testing.server import (
    BINDIR_ENV,
    CACHE_DIR_ENV,
    DSN_ENV,
    LOCALE_ENV,
    OS_USER_ENV,
    SETTINGS_ENV,
    PostgresServer,
    parse_settings,
)

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user")


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """One template cache for the tests that do not care about it: a single initdb for the module."""
    return tmp_path_factory.mktemp("template-cache")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, shared_cache: pathlib.Path) -> None:
    for name in (DSN_ENV, BINDIR_ENV, OS_USER_ENV, LOCALE_ENV, SETTINGS_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(CACHE_DIR_ENV, str(shared_cache))


@pytest.fixture
def scratch(monkeypatch: pytest.MonkeyPatch) -> Iterator[pathlib.Path]:
    """A folder, readable by PostgreSQL's OS user, where the servers of this test make their temporary folder."""
    folder = pathlib.Path(tempfile.mkdtemp(prefix="peewee-async-testing-scratch-", dir=server_module._temp_parent()))
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
    initdb_module._publish_template(tmp_path / "first", "1.0", target)
    initdb_module._publish_template(tmp_path / "second", "2.0", target)
    with tarfile.open(target / initdb_module.ARCHIVE) as archive:
        assert sorted(archive.getnames()) == ["data", "data/first"]
    assert (target / "version").read_text() == "1.0"
    assert [path.name for path in target.parent.iterdir()] == ["template"]


def test_a_damaged_template_falls_back_to_initdb(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    with PostgresServer():
        pass
    (template,) = (tmp_path / "cache").iterdir()
    (template / initdb_module.ARCHIVE).write_bytes(b"not a tar archive")
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


@contextlib.contextmanager
def _taken_port() -> Iterator[int]:
    """A port that another socket listens on, as when another process takes the free port before postgres."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def _counting_postgres(fake_bindir: pathlib.Path) -> pathlib.Path:
    """A fake postgres that records each attempt and exits at once, as a rejected setting makes it."""
    attempts = fake_bindir / "attempts"
    attempts.touch(mode=0o666)
    attempts.chmod(0o666)
    _write_script(
        fake_bindir / "postgres", f'echo attempt >> {attempts}\necho "FATAL:  boom from fake postgres"\nexit 1'
    )
    return attempts


def test_an_early_exit_is_reported_at_once(fake_bindir: pathlib.Path, scratch: pathlib.Path) -> None:
    attempts = _counting_postgres(fake_bindir)
    with pytest.raises(ServerError, match=r"exited as it started; the end of its log says why:\nFATAL:  boom"):
        PostgresServer(bindir=fake_bindir).start()
    assert attempts.read_text().count("attempt") == 1
    assert list(scratch.iterdir()) == []


def test_an_early_exit_on_a_taken_port_is_retried_then_reported(
    fake_bindir: pathlib.Path, scratch: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = _counting_postgres(fake_bindir)
    with _taken_port() as taken:
        monkeypatch.setattr(server_module, "_free_port", lambda: taken)
        with pytest.raises(ServerError, match=r"(?s)exited early 3 times, its port taken.*boom from fake postgres"):
            PostgresServer(bindir=fake_bindir).start()
    assert attempts.read_text().count("attempt") == 3
    assert list(scratch.iterdir()) == []


def test_a_port_taken_before_postgres_binds_it_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    handed: list[int] = []
    free_port = server_module._free_port

    def taken_first() -> int:
        handed.append(free_port() if handed else taken)
        return handed[-1]

    with _taken_port() as taken:
        monkeypatch.setattr(server_module, "_free_port", taken_first)
        with PostgresServer() as server:
            assert _fetch("SELECT 1", dsn=server.dsn) == 1
            assert server.port == handed[1] != taken == handed[0]


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
    assert (bare.host, bare.port, bare.user, bare.password, bare.database) == (
        "db.example",
        5432,
        "postgres",
        None,
        "postgres",
    )
    with pytest.raises(ConfigurationError, match="postgresql://") as raised:
        PostgresServer(dsn="mysql://root:hunter2@db.example/app")
    assert "hunter2" not in str(raised.value)


# -- the locale and the settings -----------------------------------------------------------------------------------

FOLDS = "SELECT 'Радиоточка' ILIKE '%радиоточка%'"


def _show(server: PostgresServer, *names: str) -> list[object]:
    return [_fetch(f"SHOW {name}", dsn=server.dsn) for name in names]


def test_the_default_locale_is_a_utf8_one_that_folds_non_ascii_letters() -> None:
    if initdb_module._default_locale() == "C":
        pytest.skip("this system has no UTF-8 locale")
    with PostgresServer() as server:
        assert server.locale == initdb_module._default_locale()
        assert initdb_module._plain(str(server.locale)).endswith(".utf8")
        assert _show(server, "lc_ctype", "lc_collate", "server_encoding") == [server.locale, server.locale, "UTF8"]
        assert _fetch(FOLDS, dsn=server.dsn) is True
        assert _fetch("SELECT lower('ÄБ')", dsn=server.dsn) == "äб"
        assert _fetch("SELECT upper('äб')", dsn=server.dsn) == "ÄБ"


@pytest.mark.parametrize(
    ("listed", "picked"),
    [
        (["C", "C.utf8", "POSIX", "en_US.utf8"], "C.UTF-8"),
        (["C", "POSIX", "de_DE.utf8", "en_US.UTF-8"], "en_US.UTF-8"),
        (["C", "POSIX", "fr_FR.UTF-8", "sr_RS.utf8@latin", "de_DE.utf8", "de_DE.iso88591"], "de_DE.utf8"),
        (["C", "POSIX"], "C"),
        ([], "C"),
    ],
)
def test_the_default_locale_is_picked_from_what_the_system_lists(listed: list[str], picked: str) -> None:
    assert initdb_module._pick_locale(listed) == picked


def test_an_explicit_locale_is_honoured_and_gets_its_own_template(
    shared_cache: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = initdb_module._default_locale()
    with PostgresServer():
        pass  # the default locale's template is in the cache
    templates = set(shared_cache.iterdir())
    with PostgresServer(locale="C") as server:
        assert (server.locale, server.from_template) == ("C", False)
        assert _fetch(FOLDS, dsn=server.dsn) is False
        assert _fetch("SELECT lower('ÄБ')", dsn=server.dsn) == "ÄБ"
        assert _show(server, "lc_ctype", "lc_collate") == ["C", "C"]
    assert len(set(shared_cache.iterdir()) - templates) == 1
    monkeypatch.setenv(LOCALE_ENV, "C")
    with PostgresServer() as server:
        assert (server.locale, server.from_template) == ("C", True)
        assert _show(server, "lc_ctype") == ["C"]
    with PostgresServer(locale=default) as server:  # the argument wins over the environment
        assert (server.locale, server.from_template) == (default, True)
        assert _show(server, "lc_ctype") == [default]


def test_an_unknown_locale_is_named_and_leaves_nothing(
    scratch: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    with pytest.raises(ServerError) as raised, PostgresServer(locale="xx_XX.UTF-8"):  # (stopped if it started)
        pass
    assert str(raised.value) == (
        "initdb failed with exit code 1, making a cluster of locale 'xx_XX.UTF-8' (`locale -a` lists the "
        'system\'s locales):\ninitdb: error: invalid locale name "xx_XX.UTF-8"'
    )
    assert list(scratch.iterdir()) == []
    assert not (tmp_path / "cache").exists() or list((tmp_path / "cache").iterdir()) == []


def test_settings_apply_over_the_built_in_ones_without_a_new_template(shared_cache: pathlib.Path) -> None:
    with PostgresServer():
        pass
    templates = set(shared_cache.iterdir())
    with PostgresServer(settings={"work_mem": "3MB", "fsync": "on", "my.flag": 1}) as server:
        assert server.from_template is True
        assert _show(server, "work_mem", "fsync", "my.flag", "synchronous_commit") == ["3MB", "on", "1", "off"]
    assert set(shared_cache.iterdir()) == templates


def test_settings_from_the_environment_unless_the_argument_gives_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SETTINGS_ENV, "work_mem = 5MB;\n temp_buffers=2MB ;")
    with PostgresServer() as server:
        assert _show(server, "work_mem", "temp_buffers") == ["5MB", "2MB"]
    with PostgresServer(settings={"work_mem": "7MB"}) as server:  # instead of the environment's, not merged
        assert _show(server, "work_mem", "temp_buffers") == ["7MB", "8MB"]


@pytest.mark.parametrize(
    ("line", "setting"),
    [
        ("work_mem=64MB", ("work_mem", "64MB")),
        ("  work_mem   =   64 MB  ", ("work_mem", "64 MB")),
        ("search_path = '\"$user\", public'", ("search_path", '"$user", public')),
        ("my.note = 'it''s'", ("my.note", "it's")),
        ("application_name = ''", ("application_name", "")),
        ("log_line_prefix = a=b", ("log_line_prefix", "a=b")),
    ],
)
def test_setting_lines_are_read_as_in_postgresql_conf(line: str, setting: tuple[str, str]) -> None:
    assert parse_settings(["", line, "  "], "here") == dict([setting])


@pytest.mark.parametrize("line", ["work_mem", "work_mem 64MB", "= 64MB", "work_mem =", "work mem = 64MB", "wörk = 1"])
def test_a_setting_line_of_another_shape_is_named(line: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse_settings(["fsync = on", line], "$SOMEWHERE")
    assert str(raised.value) == (
        f"$SOMEWHERE: {line!r} is not a setting of the form `name = value` (a name of letters, digits, _ and ., "
        "as in postgresql.conf or my.cnf), such as `work_mem = 64MB`."
    )


def test_bad_settings_are_refused_before_anything_starts(
    scratch: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigurationError, match=r"settings= names 'work mem', which is not a PostgreSQL setting"):
        PostgresServer(settings={"work mem": "1MB"})
    monkeypatch.setenv(SETTINGS_ENV, "work_mem = 1MB; oops")
    message = re.escape(f"${SETTINGS_ENV}: 'oops' is not a setting of the form")
    with pytest.raises(ConfigurationError, match=message), PostgresServer():
        pass
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"work_mem": "lots"}, 'FATAL:  invalid value for parameter "work_mem": "lots"'),
        ({"wrk_mem": "1MB"}, 'FATAL:  unrecognized configuration parameter "wrk_mem"'),
    ],
)
def test_a_setting_postgres_rejects_is_named_once_and_leaves_nothing(
    scratch: pathlib.Path, setting: dict[str, str], message: str
) -> None:
    with pytest.raises(ServerError) as raised, PostgresServer(settings=setting):
        pass
    text = str(raised.value)
    assert text.startswith("postgres exited as it started; the end of its log says why:\n")
    assert text.count(message) == 1
    assert text.count("FATAL") == 1
    assert _processes_mentioning(str(scratch)) == []
    assert list(scratch.iterdir()) == []


def test_locale_and_settings_cannot_apply_to_a_server_it_only_describes(monkeypatch: pytest.MonkeyPatch) -> None:
    message = re.escape("PostgresServer(dsn=...) starts no server, so locale= and settings= cannot apply to it")
    with pytest.raises(ConfigurationError, match=message):
        PostgresServer(dsn="postgresql://db.example", locale="C")
    with pytest.raises(ConfigurationError, match=message):
        PostgresServer(dsn="postgresql://db.example", settings={"work_mem": "1MB"})
    monkeypatch.setenv(DSN_ENV, "postgresql://db.example")  # the environment's server is used as it is
    server = PostgresServer(locale="C", settings={"work_mem": "1MB"})
    server.start()
    assert (server.attached, server.locale, server.socket_dir) == (True, None, None)
