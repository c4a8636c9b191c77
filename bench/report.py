"""Turn a benchmark run into results.json, results.md, results.rst and chart.png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mariadb_suites import LABELS as MARIADB_LABELS
from suites import LABELS


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"


def _cost(value: float, detail: str = "") -> str:
    """A ratio of two costs, unambiguously: "0.33 times the cost (3.0 times cheaper)", "1.29 times the cost (29%
    more)"; ``detail`` goes inside the parentheses."""
    said = f"{1 / value:.1f} times cheaper" if 0 < value < 1 else f"{(value - 1) * 100:.0f}% more"
    return f"{value:.2f} times the cost ({said}{detail})"


def _speed(before: float, after: float) -> str:
    """How much faster (or slower) a run of ``after`` seconds is than one of ``before``."""
    if after <= before:
        return f"{before / after:.2f} times faster"
    return f"{after / before:.2f} times slower"


LOWER = "lower"
SHORTER = "shorter"


def comparisons(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(what is compared, what was measured, which way is better) for every figure the benchmarks page explains."""
    extra = {name: value["median"] for name, value in report["strategies"]["extra"].items()}
    rows: list[tuple[str, str, str]] = []

    def cost(label: str, numerator: str, denominator: str, figures: dict[str, float] = extra) -> None:
        if numerator in figures and figures.get(denominator, 0) > 0:
            rows.append((label, _cost(figures[numerator] / figures[denominator]), LOWER))

    cost(
        "in_transaction's extra time per test, against upstream's TransactionTestCase in a fixture", "ours", "upstream"
    )
    cost("in_transaction's extra time per test, against a hand-written BEGIN/ROLLBACK fixture", "ours", "manual")
    if "ours-before" in extra:  # run.py --before REF
        before = report.get("before")
        cost(f"in_transaction as of {before}, against upstream's TransactionTestCase", "ours-before", "upstream")
        cost(f"in_transaction as of {before}, against a hand-written BEGIN/ROLLBACK fixture", "ours-before", "manual")
    mariadb = report.get("mariadb", {})
    mariadb_extra = {name: value["median"] for name, value in mariadb.get("extra", {}).items()}
    for numerator, label in (("ours", "in_transaction"), ("ours-case", "TransactionTestCase in a fixture")):
        for denominator, other in (
            ("upstream", "upstream's TransactionTestCase"),
            ("manual", "a hand-written BEGIN/ROLLBACK fixture"),
        ):
            cost(f"MariaDB: {label}'s extra time per test, against {other}", numerator, denominator, mariadb_extra)
    if "skipped" in mariadb or mariadb.get("in_transaction", "measured") != "measured":
        rows.append(("MariaDB: in_transaction", mariadb.get("skipped") or mariadb["in_transaction"], ""))
    cost("in_transaction's extra time per test, against the usual set-up (a loop and a pool per test)", "ours", "usual")
    session = report["session"]["extra"]["median"]
    label = "what the plugin adds to a one-test run: server, test database, tables, and their removal"
    rows.append((label, f"{session:.3f} s", SHORTER))
    cost("clear_tables' extra time per test, against a DELETE from each table", "ours-clear", "delete5")
    if "ours" in extra:
        for name, label, per in [
            ("ours-autosavepoint", "autosavepoint: what it adds per statement", 2),
            ("ours-atomic", "allow_transactions: what it adds per aio_atomic block", 1),
            ("ours-reset", "reset_sequences: what it adds per test", 1),
        ]:
            if name in extra:
                rows.append((label, f"{(extra[name] - extra['ours']) / per * 1000:.3f} ms", SHORTER))
    server = report["server"]
    warm, cold, plain = (server[key]["median"] for key in ("warm", "cold", "plain"))
    rows.append(("PostgreSQL server ready to connect to, from the cached template", f"{warm:.3f} s", SHORTER))
    rows.append(
        ("PostgreSQL server ready, first run (initdb), against initdb and pg_ctl by hand", _cost(cold / plain), LOWER)
    )
    rows += mariadb_comparisons(report.get("mariadb_server", {}))
    theirs = report.get("pytest_postgresql", {})
    if "extra" in theirs and session > 0:
        label = "what the plugin adds to a one-test run, against what pytest-postgresql's fixture adds"
        theirs_s = theirs["extra"]["median"]
        measured = _cost(session / theirs_s, f": {session:.2f} s against {theirs_s:.2f} s")
        rows.append((label, measured, LOWER))
    elif "error" in theirs:
        rows.append(("pytest-postgresql's fixture", "not measured: " + theirs["error"][:120], ""))
    xdist = report["xdist"]
    serial, parallel = xdist["serial"]["median"], xdist["parallel"]["median"]
    cpu = xdist["cpu"]["parallel"]["median"], xdist["cpu"]["serial"]["median"]
    collect = xdist["collect"]["median"]
    tests = f"{xdist.get('tests', 2000):,}"  # (runs before the count was kept ran 2,000)
    best = collect + (serial - collect) / 2
    rows += [
        (f"the {tests}-test suite with pytest-xdist -n 2, against -n 0", _speed(serial, parallel), "faster"),
        (
            "CPU time of pytest and its workers, -n 2 against -n 0",
            f"{cpu[0] / cpu[1]:.2f} times as much ({cpu[0]:.1f} s against {cpu[1]:.1f} s)",
            LOWER,
        ),
        (
            "the best -n 2 could do here: each worker repeats start-up and collection "
            f"(pytest --collect-only: {collect:.1f} s of {serial:.1f} s), the rest halved, nothing else added",
            _speed(serial, best),
            "",
        ),
        (
            f"{tests} empty tests without the plugin, -n 2 against -n 0: pytest-xdist alone",
            _speed(xdist["bare_serial"]["median"], xdist["bare_parallel"]["median"]),
            "",
        ),
    ]
    startup = report["startup"]["startup"]["median"]
    rows.append(
        ("the plugin installed but not configured: its import at pytest's start", f"{startup * 1000:.1f} ms", SHORTER)
    )
    per_test = report["startup"]["per_test"]
    noise = f"runs from {per_test['min'] * 1e6:+.0f} to {per_test['max'] * 1e6:+.0f} µs: too small to measure"
    rows.append(
        ("the plugin installed but not configured: per test", f"{per_test['median'] * 1e6:.1f} µs ({noise})", "")
    )
    return rows


def mariadb_comparisons(server: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The rows of the throwaway MariaDB server, or why it was not measured."""
    if "error" in server or not server:
        reason = server.get("error", "not in this run")[:120]
        return [("MariaDB server", "not measured: " + reason, "")]
    warm, cold, plain, stop = (server[key]["median"] for key in ("warm", "cold", "plain", "stop"))
    return [
        ("MariaDB server ready to connect to, from the cached data folder", f"{warm:.3f} s", SHORTER),
        ("MariaDB server ready, first run (mariadb-install-db)", f"{cold:.3f} s", SHORTER),
        (
            "MariaDB server ready, first run, against mariadb-install-db and mariadbd by hand",
            _cost(cold / plain),
            LOWER,
        ),
        ("MariaDB server stopped and its folder removed", f"{stop:.3f} s", SHORTER),
    ]


def write_report(report: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(report, indent=2))
    machine = report["machine"]
    facts = [
        f"{machine['date']}; {machine['machine']}; Python {machine['python']}; {machine['postgres']}",
        machine["versions"],
        *_mariadb_facts(report.get("mariadb_server", {}), machine["date"]),
        f"{report['reps']} pytest sessions, each running {report['rounds']} rounds of one test per strategy "
        "(insert a row, select it) in a shuffled order; a strategy's time per test is the median time from its "
        "tests' start to the next test's start; extra = that minus no isolation's, in the same session (so "
        "compare the extra times: the ms per test include each session's own baseline).",
    ]
    strategy_rows = []
    for name in _in_order(report["strategies"]["extra"]):
        extra, per = report["strategies"]["extra"][name], report["strategies"]["per_test"][name]
        strategy_rows.append(
            (LABELS[name], _ms(per["median"]), _ms(extra["median"]), _ms(extra["min"]), _ms(extra["max"]))
        )
    comparison_rows = comparisons(report)
    mariadb = report.get("mariadb", {})
    mariadb_rows = [
        (
            MARIADB_LABELS[name],
            _ms(mariadb["per_test"][name]["median"]),
            _ms(extra["median"]),
            _ms(extra["min"]),
            _ms(extra["max"]),
        )
        for name, extra in sorted(
            mariadb.get("extra", {}).items(), key=lambda item: list(MARIADB_LABELS).index(item[0])
        )
    ]
    if mariadb_rows:
        facts.append(
            f"MariaDB strategies: {mariadb['server']}, the same test on peewee_async.MySQLDatabase (aiomysql)."
        )
    (out / "results.md").write_text(markdown(facts, strategy_rows, comparison_rows, mariadb_rows))
    (out / "results.rst").write_text(restructured(facts, strategy_rows, comparison_rows, mariadb_rows))
    chart(report, out / "chart.png")


def _mariadb_facts(server: dict[str, Any], date: str) -> list[str]:
    if "version" not in server:
        return []
    when = "" if server.get("date") == date else f", its figures measured on {server['date']}"
    return [f"MariaDB {server['version']}{when}"]


def _in_order(figures: dict[str, Any]) -> list[str]:
    """The strategies measured, in the order of suites.py (the baseline first)."""
    return [name for name in LABELS if name in figures]


STRATEGY_HEADER = ("strategy", "ms per test", "extra ms (median)", "extra min", "extra max")
COMPARISON_HEADER = ("what is compared", "measured", "better is")


def markdown(
    facts: list[str],
    strategies: list[tuple[str, ...]],
    comparisons: list[tuple[str, ...]],
    mariadb: list[tuple[str, ...]] = (),  # type: ignore[assignment]
) -> str:
    def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])

    return (
        "\n\n".join(
            [
                "# Benchmark results",
                "\n".join(f"- {fact}" for fact in facts),
                "## Extra time per test over no isolation",
                table(STRATEGY_HEADER, strategies),
                *(["## On MariaDB", table(STRATEGY_HEADER, mariadb)] if mariadb else []),
                "## What the ratios say",
                table(COMPARISON_HEADER, comparisons),
                "![extra time per test](chart.png)",
            ]
        )
        + "\n"
    )


def restructured(
    facts: list[str],
    strategies: list[tuple[str, ...]],
    comparisons: list[tuple[str, ...]],
    mariadb: list[tuple[str, ...]] = (),  # type: ignore[assignment]
) -> str:
    def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
        lines = [".. list-table::", "   :header-rows: 1", ""]
        for row in [header, *rows]:
            lines.append("   * - " + (row[0] or " "))
            lines += ["     - " + (cell or " ") for cell in row[1:]]
        return "\n".join(lines)

    return (
        "\n\n".join(
            [
                "\n".join(f"- {fact}" for fact in facts),
                "**Extra time per test over no isolation**",
                table(STRATEGY_HEADER, strategies),
                *(["**On MariaDB**", table(STRATEGY_HEADER, mariadb)] if mariadb else []),
                "**What the ratios say**",
                table(COMPARISON_HEADER, comparisons),
            ]
        )
        + "\n"
    )


def chart(report: dict[str, Any], path: Path) -> None:
    """A bar per strategy on a log axis (so that the sub-millisecond ones can be read beside the usual set-up's),
    its median written at its end, the min-max range as a whisker; this package's bars in blue, the others grey
    and hatched."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    extra = report["strategies"]["extra"]
    names = [name for name in _in_order(extra) if name != "none" and extra[name]["median"] > 0]
    medians = [extra[name]["median"] * 1000 for name in names]
    low = [m - max(extra[name]["min"] * 1000, m / 10) for m, name in zip(medians, names, strict=True)]
    high = [extra[name]["max"] * 1000 - m for m, name in zip(medians, names, strict=True)]
    ours = [name.startswith("ours") for name in names]
    figure, axes = plt.subplots(figsize=(10, 0.5 * len(names) + 1.6))
    bars = axes.barh(
        [LABELS[name] for name in names],
        medians,
        xerr=[low, high],
        color=["#1f6fb2" if mine else "#c3c9d0" for mine in ours],
        hatch=None,
        edgecolor="#5b6670",
        capsize=3,
        error_kw={"ecolor": "#333333", "elinewidth": 1},
    )
    for bar, mine in zip(bars, ours, strict=True):
        if not mine:
            bar.set_hatch("//")
    for bar, median, above in zip(bars, medians, high, strict=True):
        axes.text(
            (median + above) * 1.08, bar.get_y() + bar.get_height() / 2, f"{median:.2f} ms", va="center", fontsize=9
        )
    axes.set_xscale("log")
    axes.set_xlim(min(medians) / 2, max(m + h for m, h in zip(medians, high, strict=True)) * 2.2)
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    # 0.2, 0.5, 2, 5... labelled too: on a log axis the sub-millisecond bars need them.
    axes.xaxis.set_minor_formatter(FuncFormatter(lambda value, _: f"{value:g}" if f"{value:.0e}"[0] in "25" else ""))
    axes.invert_yaxis()
    axes.set_xlabel("extra ms per test over no isolation, log scale (median; whiskers: min to max)")
    axes.set_title(f"{report['rounds']} tests of each strategy in each of {report['reps']} sessions: shorter is better")
    axes.legend(
        handles=[
            Patch(facecolor="#1f6fb2", edgecolor="#5b6670", label="peewee-async-testing"),
            Patch(facecolor="#c3c9d0", edgecolor="#5b6670", hatch="//", label="the alternatives"),
        ],
        loc="lower right",
    )
    axes.grid(axis="x", which="both", alpha=0.25)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
