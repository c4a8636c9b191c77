"""A throwaway PostgreSQL server: find the binaries, initdb (or copy a cached template), start, stop.

Example::

    with PostgresServer() as server:
        database = peewee_async.PostgresqlDatabase(**server.connect_params("postgres"))
"""

from __future__ import annotations

import contextlib
import functools
import glob
import hashlib
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, TypedDict

from .exceptions import ConfigurationError, ServerError

if TYPE_CHECKING:
    import pwd

BINDIR_ENV = "PEEWEE_ASYNC_TESTING_PG_BINDIR"
DSN_ENV = "PEEWEE_ASYNC_TESTING_DSN"
OS_USER_ENV = "PEEWEE_ASYNC_TESTING_PG_OS_USER"
CACHE_DIR_ENV = "PEEWEE_ASYNC_TESTING_CACHE_DIR"
LOCALE_ENV = "PEEWEE_ASYNC_TESTING_PG_LOCALE"
SETTINGS_ENV = "PEEWEE_ASYNC_TESTING_PG_SETTINGS"  # name = value settings, separated by ; or newlines

#: Where :func:`find_bindir` looks last, in order; within a pattern the highest version comes first.
BINDIR_PATTERNS: tuple[str, ...] = (
    "/usr/lib/postgresql/*/bin",
    "/usr/pgsql-*/bin",
    "/usr/local/pgsql/bin",
    "/opt/homebrew/opt/postgresql*/bin",
    "/usr/local/opt/postgresql*/bin",
    "/opt/homebrew/bin",
    "/Applications/Postgres.app/Contents/Versions/latest/bin",
)
INITDB_OPTIONS = (
    *("-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions"),
    "--wal-segsize=1",  # 1 MB of WAL to copy instead of 16
)
#: The locale when none is chosen: the first of these the system has, else another UTF-8 one, else C.
#: In a UTF-8 locale ``lower()``, ``upper()`` and ``ILIKE`` fold non-ASCII letters as on a usual server;
#: ``C.UTF-8`` also sorts by code point, the same on every system.
PREFERRED_LOCALES = ("C.UTF-8", "en_US.UTF-8")
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


def _holds_binaries(directory: str | os.PathLike[str]) -> bool:
    paths = [os.path.join(directory, name) for name in ("initdb", "postgres")]
    return all(os.path.isfile(path) and os.access(path, os.X_OK) for path in paths)


def _version_key(path: str) -> list[int]:
    return [int(number) for number in re.findall(r"\d+", path)]


def _pg_config_bindir() -> str | None:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    try:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return result.stdout.strip() or None


def find_bindir(
    explicit: str | os.PathLike[str] | None = None, *, patterns: Sequence[str] = BINDIR_PATTERNS
) -> pathlib.Path:
    """Return the directory holding both ``initdb`` and ``postgres``.

    Looks at, in order: ``explicit``, ``$PEEWEE_ASYNC_TESTING_PG_BINDIR``, ``pg_config --bindir``,
    ``initdb`` on ``PATH`` (symlinks resolved), then the usual install places in ``patterns``.
    An explicit setting that lacks the binaries is an error rather than skipped.

    :raises ServerError: if the explicit setting is wrong or nothing is found.
    """
    for setting, origin in ((explicit, "bindir="), (os.environ.get(BINDIR_ENV) or None, f"${BINDIR_ENV}")):
        if setting is not None:
            if not _holds_binaries(setting):
                raise ServerError(f"{origin} names {os.fspath(setting)!r}, which does not hold initdb and postgres.")
            return pathlib.Path(setting).resolve()
    initdb = shutil.which("initdb")
    candidates = [path for path in (_pg_config_bindir(), initdb and os.path.dirname(os.path.realpath(initdb))) if path]
    for pattern in patterns:
        candidates += sorted(glob.glob(pattern), key=_version_key, reverse=True)
    for candidate in candidates:
        if _holds_binaries(candidate):
            return pathlib.Path(candidate).resolve()
    raise ServerError(
        "Cannot find the PostgreSQL server binaries (initdb and postgres). Looked at pg_config --bindir, "
        f"initdb on PATH and {', '.join(patterns) or 'no other places'}. Install them "
        "(Debian/Ubuntu: apt-get install postgresql; Fedora/RHEL: dnf install postgresql-server; "
        f"macOS: brew install postgresql), or set {BINDIR_ENV} to their directory, "
        f"or point the tests at an existing server with {DSN_ENV}=postgresql://user:password@host:port/dbname."
    )


def _os_user() -> pwd.struct_passwd | None:
    """Return the unprivileged account to run PostgreSQL as when we are root (it refuses root), else None."""
    if os.name != "posix" or os.geteuid() != 0:
        return None
    import pwd  # POSIX only: importing the package must work everywhere

    names = [os.environ[OS_USER_ENV]] if os.environ.get(OS_USER_ENV) else ["postgres", "nobody"]
    for name in names:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise ServerError(
        f"PostgreSQL refuses to run as root, and there is no user account {' or '.join(map(repr, names))} "
        f"to run it as. Set {OS_USER_ENV} to an unprivileged user."
    )


class _UserArguments(TypedDict, total=False):
    user: int
    group: int
    extra_groups: list[int]


def _as_user(user: pwd.struct_passwd | None) -> _UserArguments:
    """Return the ``subprocess`` arguments that run a child as ``user`` (nothing when None)."""
    return {} if user is None else {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _cache_root() -> pathlib.Path:
    if explicit := os.environ.get(CACHE_DIR_ENV):
        return pathlib.Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return pathlib.Path(xdg, "peewee-async-testing")


def _temp_parent() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK | os.X_OK) else None


FOLDER_PREFIX = "peewee-async-testing-"
_OWNER = "owner.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap_orphans(parent: str | None) -> None:
    """Stop and remove the servers whose Python process died without stopping them (SIGKILL, a crash).

    Each server's folder names its owner's process id; a live owner's server is left alone.
    """
    for folder in pathlib.Path(parent or tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*"):
        try:
            owner = int((folder / _OWNER).read_text())
        except (OSError, ValueError):
            continue  # not ours, or still being made
        if _alive(owner):
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            postmaster = int((folder / "data" / "postmaster.pid").read_text().splitlines()[0])
            if str(folder) in pathlib.Path(f"/proc/{postmaster}/cmdline").read_text(errors="replace"):
                os.kill(postmaster, signal.SIGQUIT)  # immediate shutdown: the data is thrown away anyway
        shutil.rmtree(folder, ignore_errors=True)


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


def _postgres_version(bindir: pathlib.Path) -> str:
    output = subprocess.run([bindir / "postgres", "--version"], capture_output=True, text=True).stdout
    match = re.search(r"\)\s*(\S+)", output)  # "postgres (PostgreSQL) 15.18 (Debian ...)"
    return match.group(1) if match else output.strip()


def _pick_locale(available: Iterable[str]) -> str:
    """The first of :data:`PREFERRED_LOCALES` in ``available`` (as ``locale -a`` lists them), else the first
    other UTF-8 one, else ``C``."""
    utf8 = {_plain(name): name for name in available if _plain(name).endswith(".utf8")}
    preferred = [name for name in PREFERRED_LOCALES if _plain(name) in utf8]
    return preferred[0] if preferred else min(utf8.values(), default="C")


def _plain(locale: str) -> str:
    return locale.lower().replace("-", "")  # C.UTF-8 and C.utf8 are one locale


@functools.cache
def _default_locale() -> str:
    """The locale of a cluster when none is chosen: ``locale -a`` is asked once."""
    try:
        listed = subprocess.run(["locale", "-a"], capture_output=True, text=True, errors="replace", check=True)
    except (OSError, subprocess.CalledProcessError):
        return _pick_locale([])
    return _pick_locale(listed.stdout.split())


_SETTING_NAME = "[A-Za-z0-9_.]+"
_SETTING_LINE = re.compile(rf"\s*({_SETTING_NAME})\s*=\s*(\S.*?)\s*")


def parse_settings(lines: Iterable[str], origin: str) -> dict[str, str]:
    """Read PostgreSQL settings from ``name = value`` lines; blank lines are skipped, and a value in single
    quotes is unquoted as in postgresql.conf (``search_path = '"$user", public'``).

    :raises ConfigurationError: naming the first line of another shape, and ``origin``, where it was found.
    """
    settings = {}
    for line in filter(str.strip, lines):
        match = _SETTING_LINE.fullmatch(line)
        if match is None:
            raise ConfigurationError(
                f"{origin}: {line.strip()!r} is not a PostgreSQL setting of the form `name = value` "
                "(a name of letters, digits, _ and ., as in postgresql.conf), such as `work_mem = 64MB`."
            )
        name, value = match.groups()
        if len(value) > 1 and value[0] == value[-1] == "'":
            value = value[1:-1].replace("''", "'")
        settings[name] = value
    return settings


def _checked_settings(settings: Mapping[str, str | int | float]) -> dict[str, str]:
    for name in settings:
        if not re.fullmatch(_SETTING_NAME, name):
            raise ConfigurationError(
                f"settings= names {name!r}, which is not a PostgreSQL setting name (letters, digits, _ and ., "
                'as in postgresql.conf): give them as {"work_mem": "64MB"}.'
            )
    return {name: str(value) for name, value in settings.items()}


def _template_dir(bindir: pathlib.Path, user: pwd.struct_passwd | None, locale: str) -> pathlib.Path:
    """The cache folder of the template cluster for these binaries and locale: a new ``postgres`` binary, a new key."""
    postgres = bindir / "postgres"
    stat = postgres.stat()
    owner = user.pw_name if user else str(os.geteuid())
    options = [*INITDB_OPTIONS, f"--locale={locale}"]
    key = "\0".join([os.path.realpath(postgres), str(stat.st_size), str(stat.st_mtime_ns), *options, owner])
    return _cache_root() / f"template-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def _make_data(
    bindir: pathlib.Path, folder: pathlib.Path, user: pwd.struct_passwd | None, locale: str
) -> tuple[str, threading.Thread | None]:
    """Fill ``folder/data`` from the template cache, else by initdb; return the server's version, and
    ``None`` when the cache was used, else the thread that is putting the fresh cluster into the cache.

    The cache holds the cluster as one tar archive (and its version): extracting one file is much
    quicker than copying a thousand small ones from the disk. The thread archives a snapshot of the
    fresh cluster made in ``folder`` (on tmpfs, that snapshot is quick), while postgres starts.
    """
    data, template = folder / "data", _template_dir(bindir, user, locale)
    try:
        version = (template / "version").read_text()
        _tar("-xf", template / ARCHIVE, "-C", folder)
        if user is not None and data.stat().st_uid != user.pw_uid:  # tar kept the owner otherwise
            _chown_tree(data, user)
        return version, None
    except (OSError, subprocess.CalledProcessError):  # no template, or a damaged one (replaced below): initdb
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(template, ignore_errors=True)
    version = _postgres_version(bindir)
    command = [str(bindir / "initdb"), "-D", str(data), *INITDB_OPTIONS, f"--locale={locale}"]
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True, **_as_user(user))
    if result.returncode != 0:
        raise ServerError(
            f"initdb failed with exit code {result.returncode}, making a cluster of locale {locale!r} "
            f"(`locale -a` lists the system's locales):\n{(result.stderr or result.stdout).strip()}"
        )
    snapshot = folder / "template"
    snapshot.mkdir()
    subprocess.run(["cp", "-a", str(data), str(snapshot / "data")], capture_output=True, check=True)
    publisher = threading.Thread(target=_publish_template, args=(snapshot, version, template), daemon=True)
    publisher.start()
    return version, publisher


ARCHIVE = "data.tar"


def _tar(*arguments: str | pathlib.Path) -> None:
    subprocess.run(["tar", *map(str, arguments)], capture_output=True, check=True)


def _chown_tree(top: pathlib.Path, user: pwd.struct_passwd) -> None:
    os.chown(top, user.pw_uid, user.pw_gid)
    for folder, dirs, files in os.walk(top):
        for name in dirs + files:
            os.chown(os.path.join(folder, name), user.pw_uid, user.pw_gid, follow_symlinks=False)


def _publish_template(snapshot: pathlib.Path, version: str, target: pathlib.Path) -> None:
    """Archive ``snapshot/data`` into ``target`` atomically; if another process got there first, keep theirs."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    except OSError:
        return  # an unwritable cache only costs speed
    try:
        _tar("-cf", staging / ARCHIVE, "-C", snapshot, "data")
        (staging / "version").write_text(version)
        os.rename(staging, target)
    except (OSError, subprocess.CalledProcessError):
        shutil.rmtree(staging, ignore_errors=True)  # another process won the race: keep theirs


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


def _redact(dsn: str) -> str:
    parts = urllib.parse.urlsplit(dsn)
    if parts.password is None:
        return dsn
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


class PostgresServer:
    """A private PostgreSQL cluster for one test session, removed with everything in it on exit.

    Starts ``postgres`` as a child process on a free port of 127.0.0.1 and a Unix socket in a temporary
    folder (on ``/dev/shm`` when possible), from a cached copy of a fresh ``initdb``. Run as root, it runs
    PostgreSQL as ``$PEEWEE_ASYNC_TESTING_PG_OS_USER``, ``postgres`` or ``nobody``. When ``dsn`` or
    ``$PEEWEE_ASYNC_TESTING_DSN`` is set it starts nothing and describes that server instead.

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
        timeout: float = 30.0,
        locale: str | None = None,
        settings: Mapping[str, str | int | float] | None = None,
    ) -> None:
        if dsn and (locale or settings):
            raise ConfigurationError(
                "PostgresServer(dsn=...) starts no server, so locale= and settings= cannot apply to it: "
                "configure that server itself, or leave out dsn= to start a throwaway one."
            )
        self.timeout = timeout
        self.host = "127.0.0.1"
        self.port = 0
        self.user = "postgres"
        self.password: str | None = None
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
        self._attached_dsn = dsn or os.environ.get(DSN_ENV) or None
        self._process: subprocess.Popen[bytes] | None = None
        self._publisher: threading.Thread | None = None
        if self._attached_dsn:
            self._parse_dsn(self._attached_dsn)

    @property
    def attached(self) -> bool:
        """True when this describes an existing server (``dsn``) rather than one it starts."""
        return self._attached_dsn is not None

    @property
    def dsn(self) -> str:
        """A ``postgresql://`` URL to the maintenance database (``postgres`` on a started server)."""
        if self._attached_dsn:
            return self._attached_dsn
        self._require_running()
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"

    def connect_params(self, database: str) -> dict[str, object]:
        """Return keyword arguments for ``peewee_async.PostgresqlDatabase(**params)`` to reach ``database``."""
        self._require_running()
        return {
            "database": database,
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
        }

    def __repr__(self) -> str:
        where = _redact(self._attached_dsn) if self._attached_dsn else f"{self.host}:{self.port}"
        state = "attached" if self.attached else ("running" if self._process else "stopped")
        return f"<PostgresServer {state} {where}>"

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
            settings = parse_settings(re.split(r"[;\n]", os.environ.get(SETTINGS_ENV, "")), f"${SETTINGS_ENV}")
        locale = self.locale = self._locale_setting or os.environ.get(LOCALE_ENV) or _default_locale()
        bindir = self.bindir = find_bindir(self._bindir_setting)
        user = _os_user()
        _reap_orphans(_temp_parent())
        folder = self.socket_dir = pathlib.Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX, dir=_temp_parent()))
        try:
            (folder / _OWNER).write_text(str(os.getpid()))
            if user is not None:
                os.chown(folder, user.pw_uid, user.pw_gid)
            self.version, self._publisher = _make_data(bindir, folder, user, locale)
            self.from_template = self._publisher is None
            self._spawn(bindir, folder, user, settings)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Shut PostgreSQL down (immediate shutdown, SIGKILL after 10 s) and remove its folder. Idempotent.

        An attached server is left running.
        """
        process, self._process = self._process, None
        if process is not None:
            _terminate(process)
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            publisher.join()  # it reads from the folder
        if self.socket_dir is not None:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
            self.socket_dir = None

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
                    command, stdout=log_file, stderr=subprocess.STDOUT, cwd=folder, **_as_user(user)
                )
            if _wait_ready(self._process, data, log, deadline):
                return
            self._process = None
            if not _port_taken(self.host, self.port):
                raise ServerError(f"postgres exited as it started; the end of its log says why:\n{_log_tail(log)}")
        raise ServerError(
            f"postgres exited early {START_ATTEMPTS} times, its port taken by another process each time; "
            f"the end of its log:\n{_log_tail(log)}"
        )

    def _parse_dsn(self, dsn: str) -> None:
        parts = urllib.parse.urlsplit(dsn)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ServerError(
                f"{DSN_ENV} must be a postgresql://user:password@host:port/dbname URL, not {_redact(dsn)!r}."
            )
        self.host = parts.hostname or "localhost"
        self.port = parts.port or 5432
        self.user = urllib.parse.unquote(parts.username or "postgres")
        self.password = urllib.parse.unquote(parts.password) if parts.password is not None else None
        self.database = urllib.parse.unquote(parts.path.lstrip("/")) or "postgres"

    def _require_running(self) -> None:
        if not self.attached and self._process is None:
            raise ServerError("The server is not running: call start() or use `with PostgresServer() as server:`.")
