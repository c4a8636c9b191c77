"""What ties a throwaway server to the process that started it: the lock on its folder, its watchdog, the reaper.

- **The lock**: the owner holds an flock on ``FOLDER/lock`` for as long as the server runs, and so does its
  watchdog (the same lock, inherited). A free lock is the one sign of an orphan: :func:`reap` removes only
  such folders, whatever PID namespace started them, and leaves alone every folder without a lock file of
  this user.
- **The watchdog**: a shell of its own session, started with the server, reading a pipe whose write end
  only the owner holds (not inherited by the owner's children, closed in its forks). When the pipe closes
  (the owner stopped the server, or died by any signal) and the folder is still there, it runs this file,
  ``python -I -S lifetime.py FOLDER LOCK_FD``, which stops what is left of the server (postgres, initdb,
  mariadbd, mariadb-install-db) and removes the folder. It uses the standard library only.

This module imports nothing of the package.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pathlib
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterable

LOCK = "lock"
STOP_TIMEOUT = 10.0  # seconds for a process to exit on SIGQUIT before SIGKILL, and for the folder to be removed
POLL_INTERVAL = 0.01
#: The names (``/proc/PID/comm``) of the server's processes that may outlive their owner.
#: (``comm`` holds the first 15 characters of a name: ``mariadb-install`` is ``mariadb-install-db``.)
SERVER_PROGRAMS = frozenset({"postgres", "initdb", "mariadbd", "mysqld", "mariadb-install", "mysql_install_d"})
#: Those of them stopped by SIGKILL at once: SIGQUIT is a slow, clean shutdown to MariaDB, worthless here.
KILLED_AT_ONCE = frozenset({"mariadbd", "mysqld", "mariadb-install", "mysql_install_d"})
#: The watchdog's shell: it reads its standard input (the pipe) to its end, and if the folder is still there
#: then (the owner died without stopping the server), runs this file to clean up. A shell, not Python, so
#: that it costs the server's start next to nothing.
WATCHDOG = 'while read -r _; do :; done; if [ -e "$1/lock" ]; then exec "$2" -I -S "$3" "$1" "$4"; fi'

#: The descriptors that only this process may hold: the watchdogs' pipes and the folders' locks.
_HELD: set[int] = set()


def _close_held() -> None:
    for descriptor in _HELD:
        with contextlib.suppress(OSError):
            os.close(descriptor)
    _HELD.clear()


if hasattr(os, "register_at_fork"):  # (POSIX) a fork, as multiprocessing makes, keeps no server alive
    os.register_at_fork(after_in_child=_close_held)


def _close(descriptor: int) -> None:
    """Close ``descriptor`` if this process still holds it (a fork's hook closed it already)."""
    if descriptor in _HELD:
        _HELD.discard(descriptor)
        os.close(descriptor)


def lock_folder(folder: pathlib.Path) -> int:
    """Mark ``folder`` as a live server's: lock ``folder/lock`` and return its descriptor (held until closed).

    The file is made and locked under another name, then renamed: ``lock`` is never seen unlocked.
    """
    import fcntl  # POSIX only: importing the package must work everywhere

    temporary = folder / f".{LOCK}"
    descriptor = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        os.rename(temporary, folder / LOCK)
    except BaseException:
        os.close(descriptor)
        raise
    _HELD.add(descriptor)
    return descriptor


class Watchdog:
    """The watchdog process of the server in ``folder``, started at once, sharing the folder's ``lock``;
    :meth:`dismiss` ends it once the folder is removed."""

    def __init__(self, folder: pathlib.Path, lock: int) -> None:
        read_end, self._write_end = os.pipe()  # not inheritable: no other child of this process holds it
        _HELD.add(self._write_end)
        try:
            self.process = subprocess.Popen(
                ["/bin/sh", "-c", WATCHDOG, "watchdog", str(folder), sys.executable, __file__, str(lock)],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(lock,),
                cwd="/",
                start_new_session=True,  # Ctrl-C in the terminal does not reach it
            )
        except BaseException:
            _close(self._write_end)
            raise
        finally:
            os.close(read_end)

    def dismiss(self) -> None:
        """Close this end of the pipe, and wait for the watchdog to exit: it finds the folder gone."""
        _close(self._write_end)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def release(lock: int) -> None:
    """Close the descriptor of a folder's lock (the lock is free once the watchdog has exited too)."""
    _close(lock)


def release_folder(folder: pathlib.Path | None, lock: int | None, watchdog: Watchdog | None) -> None:
    """What stopping a server ends with, once its processes have exited: remove its ``folder`` (through the
    ``lock`` held on it; without one, a start failed before it locked the folder), free the lock, and
    dismiss its watchdog."""
    if folder is not None and lock is not None:
        remove_folder(folder, lock)
    elif folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
    if lock is not None:
        release(lock)
    if watchdog is not None:
        watchdog.dismiss()


def reap(folders: Iterable[pathlib.Path]) -> None:
    """Stop and remove the servers in ``folders`` whose owner and watchdog are both gone (SIGKILL, a crash).

    Only a folder holding a ``lock`` file of this user, whose lock is free, is touched: the lock is held
    as long as the owner or its watchdog lives, whatever PID namespace it runs in.
    """
    import fcntl

    for folder in folders:
        try:
            top = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            lock = os.open(LOCK, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=top)
        except OSError:
            continue  # not a server's folder, not ours, or still being made
        finally:
            os.close(top)
        try:
            status = os.fstat(lock)
            if not stat.S_ISREG(status.st_mode) or status.st_uid != os.geteuid():
                continue
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # held: its server is alive, or its watchdog is cleaning up
            with contextlib.suppress(OSError):  # a stranger's folder does not fail this start
                clean_up(folder, lock)
        finally:
            os.close(lock)


def stop_processes(folder: pathlib.Path) -> None:
    """Stop the server's processes that work in ``folder``: SIGQUIT (postgres's immediate shutdown; SIGKILL
    to :data:`KILLED_AT_ONCE`), then SIGKILL to those still there after :data:`STOP_TIMEOUT`. Found through
    ``/proc``: where there is none, postgres stops by itself within a minute of its folder's removal."""
    for signal_number in (signal.SIGQUIT, signal.SIGKILL):
        pids = _working_in(folder)
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL if _program(pid) in KILLED_AT_ONCE else signal_number)
        deadline = time.monotonic() + STOP_TIMEOUT
        while pids and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)
            pids = [pid for pid in pids if _works_in(pid, folder)]
        if not pids:
            return


def _working_in(folder: pathlib.Path) -> list[int]:
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    return [int(name) for name in entries if name.isdigit() and _works_in(int(name), folder)]


def _program(pid: int) -> str:
    """The name of the program that process ``pid`` runs (its first 15 characters), or "" if it has gone."""
    try:
        return pathlib.Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _works_in(pid: int, folder: pathlib.Path) -> bool:
    """Whether process ``pid`` runs one of :data:`SERVER_PROGRAMS` in ``folder`` or below (a zombie does not)."""
    try:
        if _program(pid) not in SERVER_PROGRAMS:
            return False
        cwd = os.readlink(f"/proc/{pid}/cwd").removesuffix(" (deleted)")
    except OSError:
        return False
    return cwd == str(folder) or cwd.startswith(f"{folder}{os.sep}")


def remove_folder(folder: pathlib.Path, lock: int) -> None:
    """Remove ``folder`` if its ``lock`` file is the one open as ``lock``; the lock file goes last, so that a
    folder left half-removed is still known for an orphan's.

    Everything is removed through descriptors, none through a path: a symbolic link swapped in for the
    folder or for anything in it is not followed. What a helper still writes is removed again until
    :data:`STOP_TIMEOUT`; if something remains then, the folder is left, locked, to a later reaper.
    """
    try:
        top = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return
    try:
        if not _holds(top, lock):
            return  # not the folder that was locked: removed already, and its name taken again
        deadline = time.monotonic() + STOP_TIMEOUT
        for attempt in itertools.count():
            if not _remove_entries(top, keep=LOCK):
                with contextlib.suppress(OSError):
                    os.unlink(LOCK, dir_fd=top)
                    os.rmdir(folder)  # (were it swapped for another, rmdir removes only an empty directory)
                return
            if time.monotonic() > deadline:
                return
            if attempt:
                time.sleep(POLL_INTERVAL)
    finally:
        os.close(top)


def _remove_entries(directory: int, keep: str = "") -> bool:
    """Remove what the directory open as ``directory`` holds, but ``keep``; return whether there was any."""
    entries = [entry for entry in os.scandir(directory) if entry.name != keep]
    for entry in entries:
        with contextlib.suppress(OSError):
            if not entry.is_dir(follow_symlinks=False):
                os.unlink(entry.name, dir_fd=directory)
                continue
            inner = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=directory)
            try:
                _remove_entries(inner)
            finally:
                os.close(inner)
            os.rmdir(entry.name, dir_fd=directory)
    return bool(entries)


def _holds(directory: int, lock: int) -> bool:
    """Whether the ``lock`` file in the directory open as ``directory`` is the file open as ``lock``."""
    try:
        return os.path.samestat(os.stat(LOCK, dir_fd=directory, follow_symlinks=False), os.fstat(lock))
    except OSError:
        return False


def clean_up(folder: pathlib.Path, lock: int) -> None:
    """Stop the processes of the server in ``folder`` and remove the folder, if it is the one ``lock`` locks:
    what the watchdog does when its owner died, and the reaper when both died."""
    try:
        top = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return  # removed already
    try:
        ours = _holds(top, lock)
    finally:
        os.close(top)
    if ours:
        stop_processes(folder)
        remove_folder(folder, lock)


if __name__ == "__main__":
    clean_up(pathlib.Path(sys.argv[1]), int(sys.argv[2]))
