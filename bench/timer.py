"""A pytest plugin for the benchmark runs: which test started when, written as JSON at the end.

The time of a test is from its start to the next test's start (so its tear-down counts, and the next
one's set-up does not); the first and the last test, which hold the session's set-up and tear-down,
are left out by the harness.
"""

import json
import os
import time

_starts: list[tuple[str, float]] = []
_phases: list[tuple[str, str, float]] = []


def pytest_runtest_logstart(nodeid, location):
    _starts.append((nodeid, time.perf_counter()))


def pytest_runtest_logreport(report):
    _phases.append((report.nodeid, report.when, report.duration))


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("BENCH_TIMER_OUT")
    if path:
        with open(path, "w") as out:
            json.dump({"starts": _starts, "phases": _phases, "exitstatus": int(exitstatus)}, out)
