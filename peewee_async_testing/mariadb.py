"""A throwaway MariaDB server: started on a free port from a cached fresh data folder, stopped and removed on exit.

The twin of :mod:`peewee_async_testing.server`'s :class:`~peewee_async_testing.PostgresServer`, sharing its
parts: the binaries and OS account come from :mod:`peewee_async_testing.binaries`, the cached data folder
from :mod:`peewee_async_testing.initdb`, its folder's lock, watchdog and reaper from
:mod:`peewee_async_testing.lifetime`, its temporary folder, free port and the list of throwaway servers from
:mod:`peewee_async_testing.server`. This module runs ``mariadb-install-db`` and ``mariadbd``, waits until the
server is ready, stops it, and describes a server you already have (``dsn``).

Example::

    with MariaDBServer() as server:
        database = peewee_async.MySQLDatabase(**server.connect_params("test_app"))
"""

from __future__ import annotations

import os
import pathlib
import re
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import lifetime, server
from .binaries import MARIADB_BINDIR_ENV as MARIADB_BINDIR_ENV  # re-exported, as server.py does its *_ENV names
from .binaries import MARIADB_OS_USER_ENV as MARIADB_OS_USER_ENV
from .binaries import _as_user, _os_user, _run, find_mariadb
from .dsn import DSN, MASK, Password, _quote, hide, mask, read_mysql
from .exceptions import ConfigurationError, ServerError
from .initdb import CACHE_DIR_ENV as CACHE_DIR_ENV
from .initdb import _cache_dir, _fill_data

if TYPE_CHECKING:
    import pwd

MYSQL_DSN_ENV = "PEEWEE_ASYNC_TESTING_MYSQL_DSN"
#: The accounts a server started as root runs as, the first that exists (``$PEEWEE_ASYNC_TESTING_MARIADB_OS_USER``
#: names another).
OS_ACCOUNTS = ("mysql", "nobody")
#: What ``mariadb-install-db`` is given: a ``root`` that logs in without a password, from 127.0.0.1 too.
INSTALL_OPTIONS = ("--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve")
#: The settings of the data folder (given to ``mariadb-install-db`` and to every start alike): small files, so
#: that the cached folder is small (about 20 MB) and quick to copy; Debian's character set rather than latin1.
DATA_SETTINGS = (
    "--innodb-log-file-size=4M",
    "--innodb-undo-tablespaces=0",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_general_ci",
    "--skip-log-bin",
    "--skip-name-resolve",
)
#: Durability is worthless for a throwaway server; these make writes, commits and the start much cheaper.
SERVER_SETTINGS = (
    "--innodb-flush-log-at-trx-commit=0",
    "--innodb-doublewrite=0",
    "--innodb-buffer-pool-size=32M",
    "--innodb-temp-data-file-path=ibtmp1:1M:autoextend",  # instead of writing 12 MB at every start
    "--innodb-buffer-pool-load-at-startup=0",
    "--innodb-buffer-pool-dump-at-shutdown=0",
    "--performance-schema=0",
)
SOCKET = "mysql.sock"
LOG = "mariadb.log"


def _version(mariadbd: pathlib.Path) -> str:
    output = _run([mariadbd, "--version"], text=True).stdout
    match = re.search(r"Ver\s+(\S+)", output)  # "/usr/sbin/mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for ..."
    return match.group(1) if match else output.strip()


def _accepts(path: pathlib.Path) -> bool:
    """Whether the server listens on the Unix socket ``path`` (a plain connect: no client handshake, which
    costs 80-150 ms each time it fails)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


#: What the throwaway server decides itself, and a setting may not change.
_WIRING = {"port", "bind_address", "socket", "datadir", "tmpdir", "pid_file", "user", "skip_networking"}


def checked_settings(
    settings: Mapping[str, str | int | float], origin: str = "MariaDBServer(settings=...)"
) -> dict[str, str]:
    """``settings`` (from ``origin``) as ``mariadbd`` options (``{"innodb_lock_wait_timeout": 5}``), each name
    checked."""
    for name in settings:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name):
            raise ConfigurationError(
                f"{origin} names {name!r}, which is not a MariaDB option name (letters, digits, "
                '_ and -, as in my.cnf): give them as {"innodb_lock_wait_timeout": 5}.'
            )
        if name.replace("-", "_").lower() in _WIRING:
            raise ConfigurationError(
                f"{origin} sets {name}, but the throwaway server chooses where it listens and "
                "keeps its files itself: leave it out, and read server.port, server.host or server.dsn instead."
            )
        if "\n" in str(settings[name]) or "\x00" in str(settings[name]):
            raise ConfigurationError(f"{origin}: the value of {name} holds a line break.")
    return {name: str(value) for name, value in settings.items()}


class MariaDBServer:
    """A private MariaDB server for one test session, removed with everything in it on exit.

    Starts ``mariadbd`` as a child process on a free port of 127.0.0.1 and a Unix socket in a temporary
    folder (on ``/dev/shm`` when possible), with ``--no-defaults`` (no ``my.cnf`` of the machine applies),
    from a cached copy of a fresh ``mariadb-install-db`` (made once per binaries and account). Its binaries
    are found on ``PATH``, in ``/usr/sbin``, ``/usr/libexec``..., or in ``bindir`` or
    ``$PEEWEE_ASYNC_TESTING_MARIADB_BINDIR``. Run as root, it runs MariaDB (which refuses root) as
    ``$PEEWEE_ASYNC_TESTING_MARIADB_OS_USER``, ``mysql`` or ``nobody``. Its user is ``root``, without a
    password, who may create databases; its :attr:`dsn` names no database (``mysql://root@127.0.0.1:PORT/``),
    and :attr:`database` is None.

    ``settings`` (``{"innodb_lock_wait_timeout": 5}``) are given to ``mariadbd`` as ``--name=value`` options,
    over the built-in ones; with ``dsn`` they are an error (that server's own configuration applies).

    When ``dsn`` or ``$PEEWEE_ASYNC_TESTING_MYSQL_DSN`` is set (``mysql://user:password@host:port/database``),
    it starts nothing and describes that server instead: what the DSN leaves out is ``localhost``, 3306,
    ``root``, no password, no database. ``origin`` says where the DSN came from, for errors; no error, repr or
    traceback shows its password.

    The server belongs to the process that starts it, with :class:`~peewee_async_testing.PostgresServer`'s
    guarantees: its processes run in sessions of their own (Ctrl-C stops the tests, not the server under
    them); :meth:`stop` (or the end of ``with``) stops it and removes its folder; a watchdog does both within
    seconds if the process dies without stopping it (SIGKILL included); each start removes the servers whose
    process and watchdog both died.

    Example::

        with MariaDBServer() as server:
            database = peewee_async.MySQLDatabase(**server.connect_params("test_app"))
    """

    def __init__(
        self,
        *,
        bindir: str | os.PathLike[str] | None = None,
        dsn: str | None = None,
        origin: str | None = None,
        timeout: float = 30.0,
        settings: Mapping[str, str | int | float] | None = None,
    ) -> None:
        dsn = hide(dsn)  # first: a traceback through here shows it masked
        if dsn and settings:
            raise ConfigurationError(
                "MariaDBServer(dsn=...) starts no server, so settings= cannot apply to it: configure that server "
                "itself, or leave out dsn= to start a throwaway one."
            )
        self._settings = checked_settings(settings or {})
        self.timeout = timeout
        self.host = "127.0.0.1"
        self.port = 0
        self.user = "root"
        self.password: Password | None = None
        #: The database the DSN names, else None (MariaDB needs none to connect).
        self.database: str | None = None
        #: The server's folder: its data, Unix socket (``mysql.sock``) and log (``mariadb.log``); None when
        #: stopped or attached.
        self.socket_dir: pathlib.Path | None = None
        self.mariadbd: pathlib.Path | None = None
        self.version: str | None = None
        self.from_template = False
        self._bindir_setting = bindir
        if not dsn and os.environ.get(MYSQL_DSN_ENV):
            dsn, origin = hide(os.environ[MYSQL_DSN_ENV]), origin or f"${MYSQL_DSN_ENV}"
        #: Where the DSN came from (``--peewee-dsn``, ``$PEEWEE_ASYNC_TESTING_MYSQL_DSN``...); None when started.
        self.origin = (origin or "MariaDBServer(dsn=...)") if dsn else None
        self._attached_dsn = dsn
        self._process: subprocess.Popen[bytes] | None = None
        self._lock: int | None = None  # the lock on the folder, held as long as the server runs
        self._watchdog: lifetime.Watchdog | None = None
        self._publisher: threading.Thread | None = None
        if self._attached_dsn:
            self._parse_dsn(self._attached_dsn)

    @property
    def attached(self) -> bool:
        """True when this describes an existing server (``dsn``) rather than one it starts."""
        return self._attached_dsn is not None

    @property
    def socket(self) -> pathlib.Path | None:
        """The Unix socket of a started server (None when attached)."""
        return None if self.socket_dir is None else self.socket_dir / SOCKET

    @property
    def dsn(self) -> str:
        """A ``mysql://`` URL to the server (and to the database the DSN named, if any); a
        :class:`~peewee_async_testing.dsn.DSN`, whose repr is masked."""
        self._require_running()
        user = _quote(self.user) + ("" if self.password is None else ":" + _quote(self.password))
        host = f"[{self.host}]" if ":" in self.host else self.host
        return DSN(f"mysql://{user}@{host}:{self.port}/{_quote(self.database or '')}")

    def connect_params(self, database: str | None) -> dict[str, object]:
        """Keyword arguments for ``peewee_async.MySQLDatabase(**params)`` on ``database``: the host, port, user
        and password (a :class:`~peewee_async_testing.dsn.Password`, whose repr is masked, or None)."""
        self._require_running()
        return {
            "database": database,
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
        }

    def connect(self, database: str | None = None) -> Any:
        """A PyMySQL connection to the server (to ``database``, if given), in autocommit mode (for administration).

        :raises ServerError: if it cannot connect, with the server's reason, naming where the DSN came from and
            the DSN masked (no frame of the driver, whose locals hold the password, is kept).
        """
        import pymysql

        params = self.connect_params(database)
        reason = None
        try:
            connection = pymysql.connect(**params, autocommit=True, connect_timeout=10)
        except pymysql.MySQLError as error:
            reason = self._without_secrets(str(error.args[-1] if error.args else error))
        if reason is not None:  # raised out here: the driver's error and frames are left behind
            if self.attached:
                where, fix = f"the server of {self._named()}", "Check that it runs and that the DSN is right."
            else:
                where, fix = f"the throwaway server on {self.host}:{self.port}", "Was it stopped?"
            named = f"database {database} of " if database else ""
            raise ServerError(f"Cannot connect to {named}{where}: {reason}\n{fix}")
        return connection

    def __repr__(self) -> str:
        where = mask(self._attached_dsn) if self._attached_dsn else f"{self.host}:{self.port}"
        state = "attached" if self.attached else ("running" if self._process else "stopped")
        return f"<MariaDBServer {state} {where}>"

    def _named(self) -> str:
        """Where the DSN came from, and the DSN, masked: ``--peewee-dsn (mysql://app:***@db/)``."""
        return f"{self.origin} ({mask(self._attached_dsn or '')})"

    def _without_secrets(self, text: str) -> str:
        return text.replace(self.password, MASK) if self.password else text

    def __enter__(self) -> MariaDBServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the server (nothing when attached); on failure, leave no process or folder behind.

        :raises ServerError: if the binaries are missing, ``mariadb-install-db`` fails, or ``mariadbd`` exits or
            is not ready in time.
        """
        if self.attached:
            return
        if self._process is not None:
            raise ServerError(f"{self!r} is already running.")
        mariadbd, installer = find_mariadb(self._bindir_setting)
        self.mariadbd = mariadbd
        user = _os_user(MARIADB_OS_USER_ENV, OS_ACCOUNTS, "MariaDB")
        parent = server._temp_parent()
        server._reap_orphans(parent)
        folder = self.socket_dir = pathlib.Path(tempfile.mkdtemp(prefix=server.FOLDER_PREFIX, dir=parent))
        try:
            self._lock = lifetime.lock_folder(folder)
            self._watchdog = lifetime.Watchdog(folder, self._lock)  # it starts while the data folder is made
            if user is not None:
                os.chown(folder, user.pw_uid, user.pw_gid)
            self.version, self._publisher = self._make_data(mariadbd, installer, folder, user)
            self.from_template = self._publisher is None
            self._spawn(mariadbd, folder, user)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Kill mariadbd (the data is thrown away: no clean shutdown), remove its folder, and dismiss its
        watchdog. Idempotent. An attached server is left running."""
        process, self._process = self._process, None
        if process is not None:
            server._RUNNING.discard((self.host, self.port))
            if process.poll() is None:
                process.kill()
            process.wait()
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            publisher.join()  # it reads from the folder
        folder, self.socket_dir = self.socket_dir, None
        lock, self._lock = self._lock, None
        watchdog, self._watchdog = self._watchdog, None
        lifetime.release_folder(folder, lock, watchdog)

    def _make_data(
        self, mariadbd: pathlib.Path, installer: pathlib.Path, folder: pathlib.Path, user: pwd.struct_passwd | None
    ) -> tuple[str, threading.Thread | None]:
        """Fill ``folder/data`` from the cache, else by ``mariadb-install-db`` (see :func:`.initdb._fill_data`)."""

        def install(data: pathlib.Path) -> str:
            version = _version(mariadbd)
            command = [str(installer), "--no-defaults", f"--datadir={data}", f"--basedir={mariadbd.parent.parent}"]
            command += [
                f"--tmpdir={folder}",
                *INSTALL_OPTIONS,
                *DATA_SETTINGS,
            ]  # not $TMPDIR: the account may not write it
            result = _run(command, cwd=folder, text=True, **_as_user(user))
            if result.returncode != 0:
                raise ServerError(
                    f"mariadb-install-db failed with exit code {result.returncode}, making the data folder:\n"
                    f"{(result.stderr or result.stdout).strip()[-3000:]}"
                )
            return version

        template = _cache_dir("mariadb", mariadbd, [*INSTALL_OPTIONS, *DATA_SETTINGS], user)
        return _fill_data(folder, template, user, install)

    def _spawn(self, mariadbd: pathlib.Path, folder: pathlib.Path, user: pwd.struct_passwd | None) -> None:
        """Start mariadbd and wait until it is ready; on another port if another process took its port."""
        log, deadline = folder / LOG, time.monotonic() + self.timeout
        for _ in range(server.START_ATTEMPTS):
            self.port = server._free_port()
            command = [str(mariadbd), "--no-defaults", f"--datadir={folder / 'data'}", f"--port={self.port}"]
            command += [f"--bind-address={self.host}", f"--socket={folder / SOCKET}", f"--tmpdir={folder}"]
            command += [f"--pid-file={folder / 'mariadbd.pid'}", *DATA_SETTINGS, *SERVER_SETTINGS]  # logs to stderr
            command += [f"--{name}={value}" for name, value in self._settings.items()]  # (the last one wins)
            with log.open("wb") as log_file:
                self._process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    cwd=folder,
                    start_new_session=True,  # out of the terminal's process group: Ctrl-C does not stop it
                    **_as_user(user),
                )
            if self._wait_ready(folder, log, deadline):
                server._RUNNING.add((self.host, self.port))
                return
            self._process = None
            if not server._port_taken(self.host, self.port):
                raise ServerError(
                    f"mariadbd exited as it started; the end of its log says why:\n{server._log_tail(log)}"
                )
        raise ServerError(
            f"mariadbd exited early {server.START_ATTEMPTS} times, its port taken by another process each time; "
            f"the end of its log:\n{server._log_tail(log)}"
        )

    def _wait_ready(self, folder: pathlib.Path, log: pathlib.Path, deadline: float) -> bool:
        """Return True once the server answers a first connection, False if mariadbd exited; raise at deadline.

        It polls the Unix socket with plain connects, then makes one real connection over TCP.
        """
        assert self._process is not None
        while self._process.poll() is None:
            if _accepts(folder / SOCKET):
                return self._handshake(log, deadline)
            if time.monotonic() > deadline:
                raise ServerError(
                    "mariadbd was not ready before the start timeout (raise it with MariaDBServer(timeout=...)); "
                    f"the end of its log:\n{server._log_tail(log)}"
                )
            time.sleep(server.POLL_INTERVAL)
        return False

    def _handshake(self, log: pathlib.Path, deadline: float) -> bool:
        """Make the first connection to the listening server: True, or False if mariadbd exited meanwhile."""
        import pymysql

        params = self.connect_params(None) | {"connect_timeout": max(1, int(deadline - time.monotonic()))}
        try:
            pymysql.connect(**params).close()
        except pymysql.MySQLError as error:
            if self._process is not None and self._process.poll() is not None:
                return False
            raise ServerError(
                f"mariadbd listens, but its first connection failed ({error}); the end of its log:\n"
                f"{server._log_tail(log)}"
            ) from None
        return True

    def _parse_dsn(self, dsn: DSN) -> None:
        """Take the server's host, port, user, password and database from ``dsn``; what it leaves out is
        ``localhost``, 3306, ``root``, no password and no database."""
        assert self.origin is not None
        params = read_mysql(dsn, self.origin)
        self.host = params.get("host") or "localhost"
        self.port = int(params.get("port") or 3306)
        self.user = params.get("user") or "root"
        password = params.get("password")
        self.password = None if password is None else Password(password)
        self.database = params.get("database")

    def _require_running(self) -> None:
        if not self.attached and self._process is None:
            raise ServerError("The server is not running: call start() or use `with MariaDBServer() as server:`.")
