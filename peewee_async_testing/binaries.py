"""Where the server binaries are, and the OS account to run them as (PostgreSQL and MariaDB refuse root).

:func:`find_bindir` finds the folder holding PostgreSQL's ``initdb`` and ``postgres``, :func:`find_mariadb`
MariaDB's ``mariadbd`` and ``mariadb-install-db``; run as root, :func:`_os_user` names the unprivileged
account they run as, and :func:`_as_user` the ``subprocess`` arguments that do it; :func:`_run` runs a
helper program out of the terminal's reach.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pathlib
import re
import shutil
import subprocess
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypedDict

from .exceptions import ServerError

if TYPE_CHECKING:
    import pwd

BINDIR_ENV = "PEEWEE_ASYNC_TESTING_PG_BINDIR"
OS_USER_ENV = "PEEWEE_ASYNC_TESTING_PG_OS_USER"
MARIADB_BINDIR_ENV = "PEEWEE_ASYNC_TESTING_MARIADB_BINDIR"
MARIADB_OS_USER_ENV = "PEEWEE_ASYNC_TESTING_MARIADB_OS_USER"

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
        result = _run([pg_config, "--bindir"], text=True, check=True)
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
        f"macOS: brew install postgresql), or set {BINDIR_ENV} to their directory, or point the tests at an "
        # server.DSN_ENV, read where the server is: tests/test_server.py checks that the two agree.
        "existing server with PEEWEE_ASYNC_TESTING_DSN=postgresql://user:password@host:port/dbname."
    )


def _os_user(
    variable: str = OS_USER_ENV, accounts: Sequence[str] = ("postgres", "nobody"), server: str = "PostgreSQL"
) -> pwd.struct_passwd | None:
    """Return the unprivileged account to run ``server`` as when we are root (it refuses root), else None:
    the one ``$variable`` names, else the first of ``accounts`` that exists."""
    if os.name != "posix" or os.geteuid() != 0:
        return None
    import pwd  # POSIX only: importing the package must work everywhere

    names = [os.environ[variable]] if os.environ.get(variable) else list(accounts)
    for name in names:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise ServerError(
        f"{server} refuses to run as root, and there is no user account {' or '.join(map(repr, names))} "
        f"to run it as. Set {variable} to an unprivileged user."
    )


#: MariaDB's server programs, in the order they are looked for (``mysqld`` is the old name of ``mariadbd``),
#: and the script that makes a data folder, by its new and its old name.
MARIADB_SERVERS = ("mariadbd", "mysqld")
MARIADB_INSTALLERS = ("mariadb-install-db", "mysql_install_db")
#: Where :func:`find_mariadb` looks for the server after ``PATH``, in order.
MARIADB_PLACES: tuple[str, ...] = (
    "/usr/sbin",
    "/usr/libexec",
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/local/mysql/bin",
    "/opt/homebrew/opt/mariadb/bin",
    "/usr/local/opt/mariadb/bin",
    "/opt/homebrew/bin",
)


def _program(directories: Sequence[str | os.PathLike[str]], names: Sequence[str]) -> pathlib.Path | None:
    """The first executable file named one of ``names`` in the first of ``directories`` that holds one, else None."""
    for directory in directories:
        for name in names:
            path = os.path.join(directory, name)
            if os.path.isfile(path) and os.access(path, os.X_OK):
                return pathlib.Path(path)
    return None


def find_mariadb(
    explicit: str | os.PathLike[str] | None = None, *, places: Sequence[str] = MARIADB_PLACES
) -> tuple[pathlib.Path, pathlib.Path]:
    """Return MariaDB's server program (``mariadbd`` or ``mysqld``) and its ``mariadb-install-db`` script.

    The server is looked for in ``explicit``, else ``$PEEWEE_ASYNC_TESTING_MARIADB_BINDIR``, else on ``PATH``
    and in ``places`` (Debian and Fedora keep it in ``/usr/sbin`` or ``/usr/libexec``, off a user's ``PATH``);
    the script in the server's folder, its ``../bin`` and ``../scripts``, then on ``PATH``. An explicit
    setting that lacks the server is an error rather than skipped.

    :raises ServerError: if the explicit setting is wrong or either program is not found.
    """
    server = None
    for setting, origin in (
        (explicit, "bindir="),
        (os.environ.get(MARIADB_BINDIR_ENV) or None, f"${MARIADB_BINDIR_ENV}"),
    ):
        if setting is not None:
            server = _program([setting], MARIADB_SERVERS)
            if server is None:
                raise ServerError(f"{origin} names {os.fspath(setting)!r}, which holds neither mariadbd nor mysqld.")
            break
    path = [directory for directory in os.environ.get("PATH", "").split(os.pathsep) if directory]
    server = server or _program([*path, *places], MARIADB_SERVERS)
    if server is None:
        raise ServerError(
            "Cannot find the MariaDB server (mariadbd or mysqld). Looked on PATH and in "
            f"{', '.join(places) or 'no other places'}. Install it (Debian/Ubuntu: apt-get install mariadb-server; "
            f"Fedora/RHEL: dnf install mariadb-server; macOS: brew install mariadb), or set {MARIADB_BINDIR_ENV} "
            "to its directory, or point the tests at an existing server with a mysql://user:password@host:port/ DSN."
        )
    server = server.resolve()
    beside = [server.parent, server.parent.parent / "bin", server.parent.parent / "scripts"]
    installer = _program([*beside, *path], MARIADB_INSTALLERS)
    if installer is None:
        raise ServerError(
            f"Found the MariaDB server {server}, but not mariadb-install-db, which makes its data folder: "
            f"looked in {', '.join(map(str, beside))} and on PATH. Install it with the server "
            "(Debian/Ubuntu: apt-get install mariadb-server), or put its folder on PATH."
        )
    return server, installer


class _UserArguments(TypedDict, total=False):
    user: int
    group: int
    extra_groups: list[int]


def _as_user(user: pwd.struct_passwd | None) -> _UserArguments:
    """Return the ``subprocess`` arguments that run a child as ``user`` (nothing when None)."""
    return {} if user is None else {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _run(command: Sequence[str | os.PathLike[str]], **options: Any) -> subprocess.CompletedProcess[Any]:
    """Run a helper program to its end, its output captured, in a session of its own: Ctrl-C in the terminal
    (a SIGINT to the foreground process group) then stops the tests, and not the helper under them."""
    return subprocess.run(command, capture_output=True, stdin=subprocess.DEVNULL, start_new_session=True, **options)
