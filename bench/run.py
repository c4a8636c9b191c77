"""Benchmarks of peewee-async-testing, side by side in one run: ``python bench/run.py``.

Starts a throwaway PostgreSQL server, generates the suites of ``suites.py``, runs every isolation
strategy interleaved ``--reps`` times, and the MariaDB ones of ``mariadb_suites.py`` (where ``mariadbd`` is
installed, unless ``--no-mariadb``), times the throwaway server, the plugin's start-up and
pytest-xdist, and writes ``results.md`` (Markdown), ``results.rst`` (for the docs), ``results.json``
and ``chart.png`` into ``--out``. Every comparison is a ratio of two figures measured in the same run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from mariadb_suites import bench_mariadb  # noqa: E402
from suites import BY_NAME, INI, USUAL, write_suite  # noqa: E402

from peewee_async_testing import MariaDBServer, PostgresServer, ServerError  # noqa: E402
from peewee_async_testing.binaries import _as_user, _os_user, find_bindir, find_mariadb  # noqa: E402
from peewee_async_testing.mariadb import MARIADB_OS_USER_ENV, OS_ACCOUNTS, _accepts  # noqa: E402
from peewee_async_testing.server import _free_port  # noqa: E402

PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
NO_OTHER_PLUGINS = ["-p", "no:benchmark", "-p", "no:postgresql", "-p", "no:hypothesispytest"]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run_pytest(folder: Path, env: dict[str, str], *args: str) -> dict[str, Any]:
    """Run pytest on ``folder``; return the test start times from bench/timer.py, and the wall time."""
    out = folder / "timer.json"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        [*PYTEST, *NO_OTHER_PLUGINS, "-p", "timer", f"--basetemp={folder / 'basetemp'}", *args, str(folder)],
        cwd=folder,
        env={**env, "BENCH_TIMER_OUT": str(out)},
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime  # pytest and its workers
    if result.returncode != 0:
        raise RuntimeError(f"pytest failed in {folder}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    timer = json.loads(out.read_text()) if out.exists() else {"starts": [], "phases": []}
    return {"wall": wall, "cpu": cpu, "starts": timer["starts"], "phases": timer["phases"]}


def per_strategy(starts: list[list[Any]]) -> dict[str, float]:
    """Each strategy's median seconds per test: a test's time runs from its start to the next test's
    start; the first and the last test (the session's set-up and tear-down) are left out. A median,
    so that a pause of the machine during one test (a checkpoint, a collection) does not count."""
    times: dict[str, list[float]] = {}
    for (nodeid, start), (_, following) in itertools.pairwise(starts[1:-1]):
        name = nodeid.rsplit("__", 1)[1].replace("_", "-")
        times.setdefault(name, []).append(following - start)
    return {name: statistics.median(values) for name, values in times.items()}


def median_interval(starts: list[list[Any]]) -> float:
    return statistics.median(b[1] - a[1] for a, b in itertools.pairwise(starts[1:-1]))


# -- isolation strategies --------------------------------------------------------------------------------------------


def bench_strategies(
    env: dict[str, str], work: Path, rounds: int, reps: int, names: list[str], before: Path | None = None
) -> dict[str, Any]:
    """Every strategy in one session (see suites.py), ``reps`` sessions; plus the sessions of those that
    need their own (each with ``none`` again, its baseline there), and the usual set-up's.

    ``before``: a folder holding an earlier version of the package; each rep then runs the mixed suite
    once more with that version, and its in_transaction figure is reported as ``ours-before``."""
    alone = [name for name in names if BY_NAME[name].own_session]
    write_suite(work / "mixed", [BY_NAME[name] for name in names if name not in alone], rounds)
    for name in alone:
        write_suite(work / f"own-{name}", [BY_NAME["none"], BY_NAME[name]], rounds)
    write_suite(work / "usual", USUAL, rounds, loop="function", plugin=False)
    times: dict[str, list[float]] = {}
    extra: dict[str, list[float]] = {}
    for rep in range(reps):
        mixed = per_strategy(run_pytest(work / "mixed", env)["starts"])
        sessions = [(mixed, mixed["none"])]
        if before is not None:
            earlier = per_strategy(
                run_pytest(work / "mixed", {**env, "PYTHONPATH": f"{before}{os.pathsep}{env['PYTHONPATH']}"})["starts"]
            )
            sessions.append(({"ours-before": earlier["ours"]}, earlier["none"]))
        for name in alone:
            own = per_strategy(run_pytest(work / f"own-{name}", env)["starts"])
            sessions.append(({name: own[name]}, own["none"]))
        # The usual set-up's extra includes its pool per test: against no isolation on one loop, as users
        # would compare (its own session, so its figure varies more).
        sessions.append((per_strategy(run_pytest(work / "usual", env)["starts"]), mixed["none"]))
        for session, baseline in sessions:
            for name, value in session.items():
                times.setdefault(name, []).append(value)
                extra.setdefault(name, []).append(value - baseline)
        print(f"  rep {rep + 1}/{reps}: " + ", ".join(f"{n} {ms(v[-1]):.3f}" for n, v in extra.items()), flush=True)
    return {"per_test": {n: summary(v) for n, v in times.items()}, "extra": {n: summary(v) for n, v in extra.items()}}


# -- the throwaway server ------------------------------------------------------------------------------------------


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def bench_server(reps: int) -> dict[str, Any]:
    """Start-up to the first query's readiness: warm template, cold (initdb), and plain initdb + pg_ctl start."""
    warm, cold, plain = [], [], []
    with PostgresServer():  # make sure the template is cached
        pass
    for _ in range(reps):
        server = PostgresServer()
        warm.append(timed(server.start))
        server.stop()
    for _ in range(max(2, reps // 3)):
        with tempfile.TemporaryDirectory() as cache:
            os.environ["PEEWEE_ASYNC_TESTING_CACHE_DIR"] = cache
            try:
                server = PostgresServer()
                cold.append(timed(server.start))
                server.stop()
            finally:
                del os.environ["PEEWEE_ASYNC_TESTING_CACHE_DIR"]
        plain.append(plain_initdb_and_start())
    return {"warm": summary(warm), "cold": summary(cold), "plain": summary(plain)}


def plain_initdb_and_start() -> float:
    """What a hand-made throwaway cluster costs: initdb, then pg_ctl -w start (on the same kind of disk)."""
    bindir, user = find_bindir(), _os_user()
    parent = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    folder = Path(tempfile.mkdtemp(prefix="bench-plain-", dir=parent))
    try:
        if user is not None:
            os.chown(folder, user.pw_uid, user.pw_gid)
        data = folder / "data"
        kwargs = {"cwd": folder, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": True}
        kwargs.update(_as_user(user))
        started = time.perf_counter()
        subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"], **kwargs)
        options = f"-p {_free_port()} -k {folder} -h 127.0.0.1 -c fsync=off"
        log = str(folder / "log")
        subprocess.run([str(bindir / "pg_ctl"), "-D", str(data), "-l", log, "-o", options, "-w", "start"], **kwargs)
        elapsed = time.perf_counter() - started
        subprocess.run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], **kwargs)
        return elapsed
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bench_mariadb_server(reps: int) -> dict[str, Any]:
    """The throwaway MariaDB server: ready for its first connection with the data folder cached (warm), with a
    fresh ``mariadb-install-db`` (cold), and by hand (plain ``mariadb-install-db``, ``mariadbd``, wait for its
    socket); and its stop (kill, folder removed). Without MariaDB here, what is missing."""
    try:
        find_mariadb()
    except ServerError as error:
        return {"error": str(error)}
    warm, cold, plain, stop = [], [], [], []
    with MariaDBServer():  # make sure the data folder is cached
        pass
    for _ in range(reps):
        server = MariaDBServer()
        warm.append(timed(server.start))
        stop.append(timed(server.stop))
    for _ in range(max(2, reps // 3)):
        with tempfile.TemporaryDirectory() as cache:
            os.environ["PEEWEE_ASYNC_TESTING_CACHE_DIR"] = cache
            try:
                server = MariaDBServer()
                cold.append(timed(server.start))
                version = server.version
                server.stop()
            finally:
                del os.environ["PEEWEE_ASYNC_TESTING_CACHE_DIR"]
        plain.append(plain_mariadb_install_and_start())
    figures = {"warm": summary(warm), "cold": summary(cold), "plain": summary(plain), "stop": summary(stop)}
    return {**figures, "version": version, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def plain_mariadb_install_and_start() -> float:
    """What a hand-made throwaway MariaDB costs: mariadb-install-db, then mariadbd until its socket answers."""
    mariadbd, installer = find_mariadb()
    user = _os_user(MARIADB_OS_USER_ENV, OS_ACCOUNTS, "MariaDB")
    parent = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    folder = Path(tempfile.mkdtemp(prefix="bench-plain-", dir=parent))
    try:
        if user is not None:
            os.chown(folder, user.pw_uid, user.pw_gid)
        data, sock = folder / "data", folder / "sock"
        kwargs: dict[str, Any] = {"cwd": folder, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        kwargs.update(_as_user(user))
        started = time.perf_counter()
        install = [str(installer), "--no-defaults", f"--datadir={data}", f"--tmpdir={folder}", "--skip-test-db"]
        subprocess.run([*install, "--auth-root-authentication-method=normal"], check=True, **kwargs)
        command = [str(mariadbd), "--no-defaults", f"--datadir={data}", f"--socket={sock}", f"--tmpdir={folder}"]
        command += [f"--port={_free_port()}", "--bind-address=127.0.0.1", f"--log-error={folder / 'log'}"]
        process = subprocess.Popen(command, **kwargs)
        try:
            while not _accepts(sock):
                if process.poll() is not None:
                    raise RuntimeError(f"mariadbd exited: {(folder / 'log').read_text()[-500:]}")
                time.sleep(0.005)
            return time.perf_counter() - started
        finally:
            process.kill()
            process.wait()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


BARE_TEST = "from app import Item, database\n\n\nasync def test_nothing():\n    pass\n"


def bench_session_cost(env: dict[str, str], work: Path, reps: int) -> dict[str, Any]:
    """The one-off cost of the plugin's session on a throwaway server (warm template): what it adds to a
    one-test run, measured as pytest-postgresql's is below, as the whole run's time minus that of the
    same project's run of an async test that uses no database, the plugin unconfigured. It holds the
    server's start and stop, the test database and its tables."""
    env = {key: value for key, value in env.items() if key != "PEEWEE_ASYNC_TESTING_DSN"}
    ours, bare = work / "session-ours", work / "session-bare"
    write_suite(ours, [BY_NAME["ours"]], 1)
    write_suite(bare, [BY_NAME["ours"]], 1)
    (bare / "pytest.ini").write_text(INI.format(loop="session", extra=""))
    (bare / "test_suite.py").write_text(BARE_TEST)
    for folder in (ours, bare):
        (folder / "conftest.py").write_text("")  # the other strategies' fixtures: not needed here
    costs = []
    for _ in range(reps):
        with_db, without = run_pytest(ours, env)["wall"], run_pytest(bare, env)["wall"]
        costs.append(with_db - without)
    return {"extra": summary(costs)}


def accessible_python(user: Any) -> str:
    """A Python interpreter that ``user`` can run (ours may live in root's home, which others cannot enter)."""
    if user is None:
        return sys.executable
    path = Path(os.path.realpath(sys.executable))
    if all(parent.stat().st_mode & 0o001 for parent in path.parents):
        return sys.executable
    return shutil.which("python3", path="/usr/bin:/usr/local/bin") or sys.executable


def bench_pytest_postgresql(reps: int) -> dict[str, Any]:
    """What pytest-postgresql adds to a one-test run (its ``postgresql`` fixture: initdb, start, a database),
    in a virtual environment of its own (run as an unprivileged user under root, as PostgreSQL requires)."""
    user = _os_user()
    folder = Path(tempfile.mkdtemp(prefix="peewee-bench-pytest-postgresql-"))  # reachable by that user
    try:
        return _bench_pytest_postgresql(folder, user, reps)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _bench_pytest_postgresql(folder: Path, user: Any, reps: int) -> dict[str, Any]:
    run_as: dict[str, Any] = {"cwd": folder, "capture_output": True, "text": True, **_as_user(user)}
    if user is not None:
        os.chown(folder, user.pw_uid, user.pw_gid)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(folder), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run([accessible_python(user), "-m", "venv", str(folder / "venv")], check=True, env=env, **run_as)
    python = str(folder / "venv" / "bin" / "python")
    install = [python, "-m", "pip", "install", "-q", "pytest", "pytest-postgresql", "psycopg[binary]"]
    subprocess.run(install, check=True, env=env, **run_as)
    (folder / "pytest.ini").write_text(f"[pytest]\npostgresql_exec = {find_bindir() / 'pg_ctl'}\n")
    (folder / "test_theirs.py").write_text("def test_it(postgresql):\n    postgresql.cursor().execute('SELECT 1')\n")
    (folder / "test_bare.py").write_text("import psycopg\n\n\ndef test_it():\n    pass\n")
    theirs, bare = [], []
    for _ in range(reps):
        for name, times in (("test_theirs.py", theirs), ("test_bare.py", bare)):
            started = time.perf_counter()
            pytest = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={folder / 'basetemp'}"]
            result = subprocess.run([*pytest, name], env=env, **run_as)
            times.append(time.perf_counter() - started)
            if result.returncode != 0:
                raise RuntimeError(f"pytest-postgresql run failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return {"extra": summary([t - b for t, b in zip(theirs, bare, strict=True)])}


# -- start-up and pytest-xdist -------------------------------------------------------------------------------------


IMPORT_PLUGIN = (
    "import time, pytest, pytest_asyncio\n"
    "started = time.perf_counter()\n"
    "import peewee_async_testing.plugin\n"
    "print(time.perf_counter() - started)\n"
)


def bench_startup(env: dict[str, str], work: Path, reps: int) -> dict[str, Any]:
    """What the installed, unconfigured plugin adds: to pytest's start-up (importing it, pytest and
    pytest-asyncio being loaded anyway: a whole pytest start varies by far more than that on this
    machine), and to each test (a suite of trivial tests with the plugin loaded, and blocked)."""
    folder = work / "startup"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = session\n")
    (folder / "test_suite.py").write_text("".join(f"def test_{i}():\n    pass\n\n" for i in range(500)))
    imports, loaded_tests, blocked_tests = [], [], []
    for _ in range(reps):
        output = subprocess.run([sys.executable, "-c", IMPORT_PLUGIN], capture_output=True, text=True, check=True)
        imports.append(float(output.stdout))
        loaded_tests.append(median_interval(run_pytest(folder, env)["starts"]))
        blocked_tests.append(median_interval(run_pytest(folder, env, "-p", "no:peewee_async_testing")["starts"]))
    pairs = zip(loaded_tests, blocked_tests, strict=True)
    return {"startup": summary(imports), "per_test": summary([a - b for a, b in pairs])}


def bench_xdist(env: dict[str, str], work: Path, tests: int, reps: int) -> dict[str, Any]:
    """The plugin's suite with ``-n 0`` and ``-n 2``, and its start-up and collection alone
    (``--collect-only``), which every worker repeats; and, for pytest-xdist's own figure on this
    machine, as many empty tests in a project without the plugin. Wall and CPU time (pytest and its
    workers)."""
    folder, bare = work / "xdist", work / "xdist-bare"
    write_suite(folder, [BY_NAME["ours"]], tests)
    bare.mkdir(parents=True, exist_ok=True)
    (bare / "pytest.ini").write_text("[pytest]\n")
    (bare / "test_suite.py").write_text("".join(f"def test_{i}():\n    pass\n\n" for i in range(tests)))
    runs: dict[str, list[dict[str, Any]]] = {}
    for _ in range(reps):
        for name, where, options in [
            ("serial", folder, ("-n", "0")),
            ("parallel", folder, ("-n", "2")),
            ("collect", folder, ("-n", "0", "--collect-only")),
            ("bare_serial", bare, ("-n", "0")),
            ("bare_parallel", bare, ("-n", "2")),
        ]:
            runs.setdefault(name, []).append(run_pytest(where, env, *options))
    return {
        "tests": tests,
        **{name: summary([run["wall"] for run in values]) for name, values in runs.items()},
        "cpu": {name: summary([run["cpu"] for run in values]) for name, values in runs.items()},
    }


# -- the report ----------------------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    import peewee
    import peewee_async
    import pytest
    import pytest_asyncio

    import peewee_async_testing

    server_version = subprocess.run(
        [str(find_bindir() / "postgres"), "--version"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgres": server_version,
        "versions": (
            f"peewee-async-testing {peewee_async_testing.__version__}, peewee {peewee.__version__}, "
            f"peewee-async {importlib_version('peewee-async')}, aiopg {importlib_version('aiopg')}, "
            f"pytest {pytest.__version__}, pytest-asyncio {pytest_asyncio.__version__}"
        ),
        "peewee_async": peewee_async.__name__,
    }


def importlib_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=300, help="tests of each strategy per session")
    parser.add_argument("--reps", type=int, default=7, help="sessions")
    parser.add_argument("--only", help="comma-separated strategies (none is always run)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny sizes, few repetitions")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="where to write the results")
    parser.add_argument("--before", metavar="REF", help="also time in_transaction as of this git commit")
    parser.add_argument("--no-mariadb", action="store_true", help="leave out the MariaDB strategies")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.reps = 20, 2
    names = ["none", *[n for n in (args.only.split(",") if args.only else BY_NAME) if n != "none"]]
    report: dict[str, Any] = {"machine": machine(), "rounds": args.rounds, "reps": args.reps}
    with tempfile.TemporaryDirectory(prefix="peewee-bench-") as work_dir, PostgresServer() as server:
        work = Path(work_dir)
        admin(server, "CREATE DATABASE bench")
        env = {
            **os.environ,
            "BENCH_HOST": server.host,
            "BENCH_PORT": str(server.port),
            "PEEWEE_ASYNC_TESTING_DSN": server.dsn,
            "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        }
        print(f"strategies: {args.rounds} rounds x {args.reps} sessions", flush=True)
        before = None
        if args.before:
            report["before"] = args.before
            before = earlier_version(args.before, work / "before")
        report["strategies"] = bench_strategies(env, work, args.rounds, args.reps, names, before)
        if args.no_mariadb:
            report["mariadb"] = {"skipped": "--no-mariadb"}
        elif not (shutil.which("mariadbd") or os.path.exists("/usr/sbin/mariadbd")):
            report["mariadb"] = {"skipped": "mariadbd is not installed"}
        else:
            print("MariaDB strategies", flush=True)
            report["mariadb"] = bench_mariadb(run_pytest, per_strategy, summary, env, work, args.rounds, args.reps)
        small = 2 if args.quick else 5
        print("server start-up", flush=True)
        report["server"] = bench_server(3 if args.quick else 10)
        print("MariaDB server start-up", flush=True)
        report["mariadb_server"] = bench_mariadb_server(3 if args.quick else 10)
        print("session cost", flush=True)
        report["session"] = bench_session_cost(env, work, small)
        if not args.quick:
            print("pytest-postgresql", flush=True)
            try:
                report["pytest_postgresql"] = bench_pytest_postgresql(small)
            except (OSError, RuntimeError, subprocess.CalledProcessError) as error:
                report["pytest_postgresql"] = {"error": str(error)[-500:]}
        print("plugin start-up", flush=True)
        report["startup"] = bench_startup(env, work, 3 if args.quick else 15)
        print("pytest-xdist", flush=True)
        report["xdist"] = bench_xdist(env, work, 100 if args.quick else 2000, small if args.quick else 3)
    from report import write_report

    write_report(report, args.out)
    print(f"wrote {args.out}/results.md, results.rst, results.json, chart.png")


def earlier_version(ref: str, folder: Path) -> Path:
    """The package as of git commit ``ref``, extracted into ``folder``: put first on PYTHONPATH, it is the one
    pytest loads (the plugin's entry point names the module, not the files)."""
    folder.mkdir()
    archive = subprocess.run(
        ["git", "archive", ref, "peewee_async_testing"], cwd=HERE.parent, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def admin(server: PostgresServer, sql: str) -> None:
    import psycopg2

    connection = psycopg2.connect(server.dsn)
    connection.autocommit = True
    try:
        connection.cursor().execute(sql)
    finally:
        connection.close()


if __name__ == "__main__":
    main()
