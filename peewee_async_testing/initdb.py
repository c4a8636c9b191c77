"""A new server's data folder: made once per binaries and options (``initdb``), then unpacked from the cache.

:func:`_make_data` fills a PostgreSQL server's folder: from the template that a first ``initdb`` left in the
cache (``~/.cache/peewee-async-testing``, or ``$PEEWEE_ASYNC_TESTING_CACHE_DIR``), else by running ``initdb``
and putting its result into the cache while the server starts; :func:`_fill_data` does this for any server
(MariaDB's ``mariadb-install-db`` too). :func:`_default_locale` picks the locale when none is chosen.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from .binaries import _as_user, _run
from .exceptions import ServerError

if TYPE_CHECKING:
    import pwd

CACHE_DIR_ENV = "PEEWEE_ASYNC_TESTING_CACHE_DIR"

INITDB_OPTIONS = (
    *("-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions"),
    "--wal-segsize=1",  # 1 MB of WAL to copy instead of 16
)
#: The locale when none is chosen: the first of these the system has, else another UTF-8 one, else C.
#: In a UTF-8 locale ``lower()``, ``upper()`` and ``ILIKE`` fold non-ASCII letters as on a usual server;
#: ``C.UTF-8`` also sorts by code point, the same on every system.
PREFERRED_LOCALES = ("C.UTF-8", "en_US.UTF-8")
ARCHIVE = "data.tar"


def _pick_locale(available: Iterable[str]) -> str:
    """The first of :data:`PREFERRED_LOCALES` in ``available`` (as ``locale -a`` lists them), else the
    environment's own locale if it is a UTF-8 one of them, else the first other UTF-8 one (English first),
    else ``C``."""
    utf8 = {_plain(name): name for name in available if _plain(name).endswith(".utf8")}
    environment = os.environ.get("LC_ALL") or os.environ.get("LC_CTYPE") or os.environ.get("LANG") or ""
    preferred = [name for name in (*PREFERRED_LOCALES, environment) if _plain(name) in utf8]
    others = sorted(utf8.values(), key=lambda name: (not name.startswith("en_"), name))
    return preferred[0] if preferred else (others[0] if others else "C")


def _plain(locale: str) -> str:
    return locale.lower().replace("-", "")  # C.UTF-8 and C.utf8 are one locale


@functools.cache
def _default_locale() -> str:
    """The locale of a cluster when none is chosen: ``locale -a`` is asked once."""
    try:
        listed = _run(["locale", "-a"], text=True, errors="replace", check=True)
    except (OSError, subprocess.CalledProcessError):
        return _pick_locale([])
    return _pick_locale(listed.stdout.split())


def _cache_root() -> pathlib.Path:
    if explicit := os.environ.get(CACHE_DIR_ENV):
        return pathlib.Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return pathlib.Path(xdg, "peewee-async-testing")


def _postgres_version(bindir: pathlib.Path) -> str:
    output = _run([bindir / "postgres", "--version"], text=True).stdout
    match = re.search(r"\)\s*(\S+)", output)  # "postgres (PostgreSQL) 15.18 (Debian ...)"
    return match.group(1) if match else output.strip()


def _template_dir(bindir: pathlib.Path, user: pwd.struct_passwd | None, locale: str) -> pathlib.Path:
    """The cache folder of the template cluster for these binaries and locale: a new ``postgres`` binary, a new key."""
    return _cache_dir("template", bindir / "postgres", [*INITDB_OPTIONS, f"--locale={locale}"], user)


def _cache_dir(
    kind: str, program: pathlib.Path, options: Iterable[str], user: pwd.struct_passwd | None
) -> pathlib.Path:
    """The cache folder of the data folder that ``program`` makes with ``options`` for ``user``: its name
    changes with the program's path, size and time, the options and the owner."""
    stat = program.stat()
    owner = user.pw_name if user else str(os.geteuid())
    key = "\0".join([os.path.realpath(program), str(stat.st_size), str(stat.st_mtime_ns), *options, owner])
    return _cache_root() / f"{kind}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def _make_data(
    bindir: pathlib.Path, folder: pathlib.Path, user: pwd.struct_passwd | None, locale: str
) -> tuple[str, threading.Thread | None]:
    """Fill ``folder/data`` from the template cache, else by initdb; return the server's version, and
    ``None`` when the cache was used, else the thread that is putting the fresh cluster into the cache
    (see :func:`_fill_data`)."""

    def initdb(data: pathlib.Path) -> str:
        version = _postgres_version(bindir)
        command = [str(bindir / "initdb"), "-D", str(data), *INITDB_OPTIONS, f"--locale={locale}"]
        result = _run(command, cwd=folder, text=True, **_as_user(user))
        if result.returncode != 0:
            raise ServerError(
                f"initdb failed with exit code {result.returncode}, making a cluster of locale {locale!r} "
                f"(`locale -a` lists the system's locales):\n{(result.stderr or result.stdout).strip()}"
            )
        return version

    return _fill_data(folder, _template_dir(bindir, user, locale), user, initdb)


def _fill_data(
    folder: pathlib.Path,
    template: pathlib.Path,
    user: pwd.struct_passwd | None,
    make: Callable[[pathlib.Path], str],
) -> tuple[str, threading.Thread | None]:
    """Fill ``folder/data`` from the cache folder ``template``, else by ``make(folder / "data")``, which returns
    the server's version; return that version, and ``None`` when the cache was used, else the thread that is
    putting the fresh data folder into the cache.

    The cache holds the data folder as one tar archive (and its version): extracting one file is much
    quicker than copying a thousand small ones from the disk. The thread archives a snapshot of the
    fresh folder made in ``folder`` (on tmpfs, that snapshot is quick), while the server starts.
    """
    data = folder / "data"
    try:
        version = (template / "version").read_text()
        _tar("-xf", template / ARCHIVE, "-C", folder)
        if user is not None and data.stat().st_uid != user.pw_uid:  # tar kept the owner otherwise
            _chown_tree(data, user)
        return version, None
    except (OSError, subprocess.CalledProcessError):  # no template, or a damaged one (replaced below): make it
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(template, ignore_errors=True)
    version = make(data)
    snapshot = folder / "template"
    snapshot.mkdir()
    _run(["cp", "-a", str(data), str(snapshot / "data")], check=True)
    publisher = threading.Thread(target=_publish_template, args=(snapshot, version, template), daemon=True)
    publisher.start()
    return version, publisher


def _tar(*arguments: str | pathlib.Path) -> None:
    _run(["tar", *map(str, arguments)], check=True)


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
