"""Where the PostgreSQL server binaries are, and the OS account to run them as (PostgreSQL refuses root).

:func:`find_bindir` finds the folder holding ``initdb`` and ``postgres``; run as root, :func:`_os_user`
names the unprivileged account they run as, and :func:`_as_user` the ``subprocess`` arguments that do it;
:func:`_run` runs a helper program out of the terminal's reach.
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


def _run(command: Sequence[str | os.PathLike[str]], **options: Any) -> subprocess.CompletedProcess[Any]:
    """Run a helper program to its end, its output captured, in a session of its own: Ctrl-C in the terminal
    (a SIGINT to the foreground process group) then stops the tests, and not the helper under them."""
    return subprocess.run(command, capture_output=True, stdin=subprocess.DEVNULL, start_new_session=True, **options)
