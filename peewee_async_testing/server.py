"""A throwaway PostgreSQL server: started on a free port from a fresh cluster, stopped and removed on exit.

Its data folder comes from :mod:`peewee_async_testing.initdb`, its binaries and OS account from
:mod:`peewee_async_testing.binaries`, what ties it to this process (its folder's lock, its watchdog, the
reaper of what a killed session left) from :mod:`peewee_async_testing.lifetime`; this module starts
``postgres``, waits until it is ready, stops it, and describes a server you already have (``dsn``).

Example::

    with PostgresServer() as server:
        database = peewee_async.PostgresqlDatabase(**server.connect_params("postgres"))
"""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from . import lifetime
from .binaries import BINDIR_ENV as BINDIR_ENV  # re-exported: every *_ENV name is importable from here
from .binaries import OS_USER_ENV as OS_USER_ENV
from .binaries import _as_user, _os_user, find_bindir
from .dsn import DSN, MASK, SECRETS, Password, hide, mask, psycopg_pool_problem, read, to_url
from .exceptions import ConfigurationError, ServerError
from .initdb import CACHE_DIR_ENV as CACHE_DIR_ENV
from .initdb import _default_locale, _make_data
from .settings import SETTINGS_ENV as SETTINGS_ENV
from .settings import _checked_settings, environment_settings
from .settings import parse_settings as parse_settings

if TYPE_CHECKING:
    import pwd

DSN_ENV = "PEEWEE_ASYNC_TESTING_DSN"
#: What this library's own connections are called on the server (``application_name``), unless the DSN names one.
APPLICATION_NAME = "peewee-async-testing"
LOCALE_ENV = "PEEWEE_ASYNC_TESTING_PG_LOCALE"
#: Durability is worthless for a throwaway cluster; these settings make writes and commits much cheaper.
SERVER_SETTINGS = (
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "wal_level=minimal",
    "max_wal_senders=0",
    "jit=off",
    "dynamic_shared_memory_type=mmap",  # segments in the data folder, removed with it: none left in /dev/shm
)
START_ATTEMPTS = 3
STOP_TIMEOUT = 10.0
POLL_INTERVAL = 0.005


def _temp_parent() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK | os.X_OK) else None


FOLDER_PREFIX = "peewee-async-testing-"
#: The (host, port) of every throwaway server this process runs: what :func:`is_throwaway` answers from.
_RUNNING: set[tuple[str, int]] = set()


def is_throwaway(host: object, port: object) -> bool:
    """Whether ``host``:``port`` is a throwaway server that this process started (and still runs)."""
    return (str(host), int(port) if isinstance(port, (int, str)) and str(port).isdigit() else -1) in _RUNNING


def _reap_orphans(parent: str | None) -> None:
    """Stop and remove the servers whose owner and watchdog both died without stopping them (see :mod:`.lifetime`)."""
    lifetime.reap(pathlib.Path(parent or tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*"))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_taken(host: str, port: int) -> bool:
    """Whether another process holds ``port`` (asked once postgres, which failed to start, let it go)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _wait_ready(process: subprocess.Popen[bytes], data: pathlib.Path, log: pathlib.Path, deadline: float) -> bool:
    """Return True once postmaster.pid says ready (PostgreSQL >= 10), False if postgres exited; raise at deadline."""
    while process.poll() is None:
        try:
            lines = (data / "postmaster.pid").read_text().splitlines()
        except OSError:
            lines = []
        if len(lines) >= 8 and lines[7].strip() == "ready":
            return True
        if time.monotonic() > deadline:
            raise ServerError(
                "postgres was not ready before the start timeout (raise it with PostgresServer(timeout=...)); "
                f"the end of its log:\n{_log_tail(log)}"
            )
        time.sleep(POLL_INTERVAL)
    return False


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGQUIT)  # immediate shutdown, no checkpoint: the data is thrown away
        try:
            process.wait(STOP_TIMEOUT)
            return
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


def _log_tail(log: pathlib.Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class PostgresServer:
    """A private PostgreSQL cluster for one test session, removed with everything in it on exit.

    Starts ``postgres`` as a child process on a free port of 127.0.0.1 and a Unix socket in a temporary
    folder (on ``/dev/shm`` when possible), from a cached copy of a fresh ``initdb``. Run as root, it runs
    PostgreSQL as ``$PEEWEE_ASYNC_TESTING_PG_OS_USER``, ``postgres`` or ``nobody``. When ``dsn`` or
    ``$PEEWEE_ASYNC_TESTING_DSN`` is set it starts nothing and describes that server instead: a
    ``postgresql://`` URL or libpq's ``key=value`` form, every parameter of which reaches every
    connection. ``origin`` says where the DSN came from, for errors (default:
    ``PostgresServer(dsn=...)``, or ``$PEEWEE_ASYNC_TESTING_DSN``); no error, repr or traceback shows its password.

    The server belongs to the process that starts it. Its processes run in sessions of their own, so
    Ctrl-C in the terminal stops the tests and not the server under them; :meth:`stop` (or the end of
    ``with``) stops it and removes its folder. If the process dies without stopping it (any signal,
    SIGKILL included), a watchdog started with it does both within seconds. Each start also removes the
    servers whose process and watchdog both died, and only those: the folder's lock, held by both, tells
    them apart from live ones, whatever PID namespace started them.

    The cluster's ``locale`` is ``locale``, else ``$PEEWEE_ASYNC_TESTING_PG_LOCALE``, else the first of
    ``C.UTF-8``, ``en_US.UTF-8`` or another UTF-8 locale that the system has (``C`` if it has none).
    ``settings`` (``{"work_mem": "64MB"}``), else ``$PEEWEE_ASYNC_TESTING_PG_SETTINGS``
    (``work_mem = 64MB; fsync = on``), are set on the ``postgres`` command line, over the built-in ones.
    They cannot apply to a server it only describes: with ``dsn`` they are an error, and with
    ``$PEEWEE_ASYNC_TESTING_DSN`` they are ignored, as that server's own configuration applies.

    Example::

        with PostgresServer(settings={"work_mem": "64MB"}) as server:
            psycopg2.connect(server.dsn)
    """

    def __init__(
        self,
        *,
        bindir: str | os.PathLike[str] | None = None,
        dsn: str | None = None,
        origin: str | None = None,
        timeout: float = 30.0,
        locale: str | None = None,
        settings: Mapping[str, str | int | float] | None = None,
    ) -> None:
        dsn = hide(dsn)  # first: a traceback through here shows it masked
        if dsn and (locale or settings):
            raise ConfigurationError(
                "PostgresServer(dsn=...) starts no server, so locale= and settings= cannot apply to it: "
                "configure that server itself, or leave out dsn= to start a throwaway one."
            )
        self.timeout = timeout
        self.host = "127.0.0.1"
        self.port = 0
        self.user = "postgres"
        self.password: Password | None = None
        self.database = "postgres"
        self.socket_dir: pathlib.Path | None = None
        self.bindir: pathlib.Path | None = None
        self.version: str | None = None
        self.from_template = False
        #: The cluster's locale, once started (None when attached).
        self.locale: str | None = None
        self._bindir_setting = bindir
        self._locale_setting = locale or None
        self._settings = None if settings is None else _checked_settings(settings)
        if not dsn and os.environ.get(DSN_ENV):
            dsn, origin = hide(os.environ[DSN_ENV]), origin or f"${DSN_ENV}"
        #: Where the DSN came from (``--peewee-dsn``, ``$PEEWEE_ASYNC_TESTING_DSN``...); None for a started server.
        self.origin = (origin or "PostgresServer(dsn=...)") if dsn else None
        self._attached_dsn = dsn
        self._libpq: dict[str, str] = {}  # the DSN's parameters beyond host, port, user, password and dbname
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
    def dsn(self) -> str:
        """A ``postgresql://`` URL to the maintenance database (``postgres`` on a started server), with every
        parameter of the DSN it was given (a :class:`~peewee_async_testing.dsn.DSN`: its repr is masked)."""
        if self._attached_dsn:
            params = {"host": self.host, "port": str(self.port), "user": self.user, "password": self.password}
            return DSN(to_url({**params, "dbname": self.database, **self._libpq}))
        self._require_running()
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"

    def connect_params(self, database: str, *, driver: Literal["aiopg", "psycopg"] = "aiopg") -> dict[str, object]:
        """Keyword arguments for a peewee-async database (``PostgresqlDatabase(**params)``) on ``database``:
        the host, port, user and password, and every other parameter of the DSN (``sslmode``, ``options``...).

        ``driver="psycopg"`` for ``peewee_async.Psycopg3Database``, whose pool passes on only the host, port,
        user and password: a DSN with more is refused. (The password is a
        :class:`~peewee_async_testing.dsn.Password`: its repr is masked.)

        :raises ConfigurationError: if ``driver`` cannot take the DSN's parameters, or is another one.
        """
        if driver not in ("aiopg", "psycopg"):
            raise ConfigurationError(f"connect_params(driver={driver!r}): the drivers are 'aiopg' and 'psycopg'.")
        params = self._params(database)
        problem = psycopg_pool_problem(params) if driver == "psycopg" else None
        if driver == "aiopg" and "connect_timeout" in params:
            problem = (
                "sets connect_timeout, which peewee_async.PostgresqlDatabase hands to aiopg as its timeout of every "
                "statement (and as a string, which fails every query). Leave it out of the DSN and set "
                "PGCONNECT_TIMEOUT in the environment instead: libpq reads it for every connection."
            )
        if problem is not None:
            raise ConfigurationError(f"{self._named()} {problem}")
        return params

    def _params(self, database: str) -> dict[str, object]:
        """The host, port, user, password, ``database`` and every other parameter of the DSN: for any driver."""
        self._require_running()
        params = {"database": database, "host": self.host, "port": self.port, "user": self.user}
        params.update({"password": self.password, **self._libpq})
        return params

    def connect(self, database: str) -> Any:
        """A psycopg2 connection to ``database`` of the server, in autocommit mode (for administration), with
        every parameter of the DSN; ``application_name`` is ``peewee-async-testing`` unless the DSN sets it.

        :raises ServerError: if it cannot connect, with libpq's reason, naming where the DSN came from and the
            DSN masked (no frame of the driver, whose locals hold the password, is kept).
        """
        import psycopg2

        params = {key: value for key, value in self._params(database).items() if value is not None}
        params.setdefault("fallback_application_name", APPLICATION_NAME)
        reason = None
        try:
            connection = psycopg2.connect(dbname=params.pop("database"), **params)
        except psycopg2.Error as error:
            reason = self._without_secrets(str(error).strip())
        if reason is not None:  # raised out here: the driver's error and frames are left behind
            if self.attached:
                where, fix = f"the server of {self._named()}", "Check that it runs and that the DSN is right."
            else:
                where, fix = f"the throwaway server on {self.host}:{self.port}", "Was it stopped?"
            raise ServerError(f"Cannot connect to database {database} of {where}: {reason}\n{fix}")
        connection.autocommit = True
        return connection

    def __repr__(self) -> str:
        where = mask(self._attached_dsn) if self._attached_dsn else f"{self.host}:{self.port}"
        state = "attached" if self.attached else ("running" if self._process else "stopped")
        return f"<PostgresServer {state} {where}>"

    def _named(self) -> str:
        """Where the DSN came from, and the DSN, masked: ``--peewee-dsn (postgresql://app:***@db/postgres)``."""
        return f"{self.origin} ({mask(self._attached_dsn or '')})"

    def _without_secrets(self, text: str) -> str:
        """``text`` with the DSN's password (and other secrets) replaced by ``***``, wherever they appear."""
        for secret in (self.password, *(self._libpq.get(key) for key in SECRETS)):
            text = text.replace(secret, MASK) if secret else text
        return text

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the cluster (nothing when attached); on failure, leave no process or folder behind.

        :raises ServerError: if the binaries are missing, initdb rejects the locale, or PostgreSQL rejects a
            setting or does not become ready in time.
        :raises ConfigurationError: if ``$PEEWEE_ASYNC_TESTING_PG_SETTINGS`` holds a line of another shape.
        """
        if self.attached:
            return
        if self._process is not None:
            raise ServerError(f"{self!r} is already running.")
        settings = self._settings
        if settings is None:
            settings = environment_settings()
        locale = self.locale = self._locale_setting or os.environ.get(LOCALE_ENV) or _default_locale()
        bindir = self.bindir = find_bindir(self._bindir_setting)
        user = _os_user()
        _reap_orphans(_temp_parent())
        folder = self.socket_dir = pathlib.Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX, dir=_temp_parent()))
        try:
            self._lock = lifetime.lock_folder(folder)
            self._watchdog = lifetime.Watchdog(folder, self._lock)  # it starts while the cluster is made
            if user is not None:
                os.chown(folder, user.pw_uid, user.pw_gid)
            self.version, self._publisher = _make_data(bindir, folder, user, locale)
            self.from_template = self._publisher is None
            self._spawn(bindir, folder, user, settings)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Shut PostgreSQL down (immediate shutdown, SIGKILL after 10 s), remove its folder, and dismiss its
        watchdog. Idempotent.

        An attached server is left running.
        """
        process, self._process = self._process, None
        if process is not None:
            _RUNNING.discard((self.host, self.port))
            _terminate(process)
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            publisher.join()  # it reads from the folder
        folder, self.socket_dir = self.socket_dir, None
        lock, self._lock = self._lock, None
        watchdog, self._watchdog = self._watchdog, None
        lifetime.release_folder(folder, lock, watchdog)

    def _spawn(
        self, bindir: pathlib.Path, folder: pathlib.Path, user: pwd.struct_passwd | None, settings: dict[str, str]
    ) -> None:
        """Start postgres and wait until it is ready; on another port if another process took its port."""
        data, log = folder / "data", folder / "postgres.log"
        deadline = time.monotonic() + self.timeout
        options = [*SERVER_SETTINGS, *(f"{name}={value}" for name, value in settings.items())]  # the last one wins
        for _ in range(START_ATTEMPTS):
            self.port = _free_port()
            command = [str(bindir / "postgres"), "-D", str(data), "-p", str(self.port), "-k", str(folder)]
            command += ["-h", self.host, *(argument for option in options for argument in ("-c", option))]
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
            if _wait_ready(self._process, data, log, deadline):
                _RUNNING.add((self.host, self.port))
                return
            self._process = None
            if not _port_taken(self.host, self.port):
                raise ServerError(f"postgres exited as it started; the end of its log says why:\n{_log_tail(log)}")
        raise ServerError(
            f"postgres exited early {START_ATTEMPTS} times, its port taken by another process each time; "
            f"the end of its log:\n{_log_tail(log)}"
        )

    def _parse_dsn(self, dsn: DSN) -> None:
        """Take the server's host, port, user, password and maintenance database from ``dsn``, and keep its other
        parameters for every connection. What it leaves out comes from libpq's environment, as for psql
        (``$PGHOST``, ``$PGPORT``, ``$PGUSER``, ``$PGPASSWORD``), else ``localhost``, 5432, ``postgres``, no
        password; the maintenance database is ``postgres`` unless the DSN names one (``$PGDATABASE`` names the
        app's database, not one to administer from). libpq itself reads the other variables (``$PGSSLMODE``...).
        """
        assert self.origin is not None
        params = read(dsn, self.origin, environment=("host", "port", "user", "password"))
        self.host = params.pop("host", "") or "localhost"
        self.port = int(params.pop("port", "") or 5432)
        self.user = params.pop("user", "") or "postgres"
        password = params.pop("password", None)
        self.password = None if password is None else Password(password)
        self.database = params.pop("dbname", "") or "postgres"
        self._libpq = params

    def _require_running(self) -> None:
        if not self.attached and self._process is None:
            raise ServerError("The server is not running: call start() or use `with PostgresServer() as server:`.")
