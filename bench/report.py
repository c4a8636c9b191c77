"""Turn a benchmark run into results.json, results.md, results.rst and chart.png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mariadb_suites import LABELS as MARIADB_LABELS
from suites import LABELS


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"


def targets(report: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """(target, what was measured, the bound, met) for every target of the benchmark issue."""
    extra = {name: value["median"] for name, value in report["strategies"]["extra"].items()}
    rows: list[tuple[str, str, str, bool | None]] = []

    def ratio(name: str, numerator: str, denominator: str, bound: float, at_most: bool = True) -> None:
        if numerator in extra and denominator in extra and extra[denominator] > 0:
            value = extra[numerator] / extra[denominator]
            met = value <= bound if at_most else value >= bound
            rows.append((name, f"{value:.2f}x", f"{'≤' if at_most else '≥'} {bound}x", met))

    ratio("1. in_transaction vs upstream TransactionTestCase (extra per test)", "ours", "upstream", 0.35)
    ratio("1. in_transaction vs hand-written BEGIN/ROLLBACK (extra per test)", "ours", "manual", 0.5)
    if "ours-before" in extra:  # run.py --before REF
        for other in ("upstream", "manual"):
            if extra.get(other, 0) > 0:
                value = extra["ours-before"] / extra[other]
                label = f"1. in_transaction as of {report.get('before')} vs {other}, for comparison"
                rows.append((label, f"{value:.2f}x", "reported", None))
    mariadb = report.get("mariadb", {})
    mariadb_extra = {name: value["median"] for name, value in mariadb.get("extra", {}).items()}
    for numerator, label in (("ours", "in_transaction"), ("ours-case", "TransactionTestCase in a fixture")):
        for denominator, other in (
            ("upstream", "upstream TransactionTestCase"),
            ("manual", "hand-written BEGIN/ROLLBACK"),
        ):
            if numerator in mariadb_extra and mariadb_extra.get(denominator, 0) > 0:
                value = mariadb_extra[numerator] / mariadb_extra[denominator]
                rows.append((f"1. MariaDB: {label} vs {other} (extra per test)", f"{value:.2f}x", "reported", None))
    if "skipped" in mariadb or mariadb.get("in_transaction", "measured") != "measured":
        rows.append(
            ("1. MariaDB: in_transaction", mariadb.get("skipped") or mariadb["in_transaction"], "reported", None)
        )
    ratio("2. in_transaction vs the usual set-up (extra per test)", "ours", "usual", 0.1)
    session = report["session"]["extra"]["median"]
    label = "2. one-off session cost: server, test database, tables (warm template), in a one-test run"
    rows.append((label, f"{session:.3f} s", "≤ 0.5 s", session <= 0.5))
    ratio("3. clear_tables vs DELETE from each table", "ours-clear", "delete5", 0.5)
    if "ours" in extra:
        for name, label, per in [
            ("ours-autosavepoint", "4. autosavepoint, per statement", 2),
            ("ours-atomic", "4. allow_transactions, per aio_atomic block", 1),
            ("ours-reset", "4. reset_sequences, per test", 1),
        ]:
            if name in extra:
                rows.append((label, f"{(extra[name] - extra['ours']) / per * 1000:.3f} ms", "reported", None))
    server = report["server"]
    warm, cold, plain = (server[key]["median"] for key in ("warm", "cold", "plain"))
    rows.append(("5. server ready, template cached", f"{warm:.3f} s", "≤ 0.25 s", warm <= 0.25))
    rows.append(
        ("5. server ready, cold vs plain initdb + start", f"{cold / plain:.2f}x", "≤ 1.2x", cold / plain <= 1.2)
    )
    rows += mariadb_targets(report.get("mariadb_server", {}))
    theirs = report.get("pytest_postgresql", {})
    if "extra" in theirs and session > 0:
        ratio_value = theirs["extra"]["median"] / session
        rows.append(
            (
                "5. first test: pytest-postgresql's extra time / ours",
                f"{ratio_value:.1f}x ({theirs['extra']['median']:.2f} s / {session:.2f} s)",
                "≥ 10x",
                ratio_value >= 10,
            )
        )
    elif "error" in theirs:
        rows.append(("5. first test vs pytest-postgresql", "not measured: " + theirs["error"][:120], "≥ 10x", None))
    xdist = report["xdist"]
    speedup = xdist["serial"]["median"] / xdist["parallel"]["median"]
    rows.append(("6. pytest-xdist -n 2 vs -n 0, whole run", f"{speedup:.2f}x faster", "≥ 1.6x", speedup >= 1.6))
    cpu = xdist["cpu"]["parallel"]["median"], xdist["cpu"]["serial"]["median"]
    serial, collect = xdist["serial"]["median"], xdist["collect"]["median"]
    best = serial / (collect + (serial - collect) / 2)
    ceiling = xdist["bare_serial"]["median"] / xdist["bare_parallel"]["median"]
    for label, value in [
        (
            "6. CPU time of pytest and its workers, -n 2 / -n 0",
            f"{cpu[0] / cpu[1]:.2f}x ({cpu[0]:.1f} s / {cpu[1]:.1f} s)",
        ),
        (
            "6. the best -n 2 could do here: start-up and collection (--collect-only, "
            f"{collect:.1f} s of {serial:.1f} s) in each worker, the rest halved, no xdist overhead",
            f"{best:.2f}x faster",
        ),
        ("6. the same number of empty tests, no plugin: pytest-xdist alone", f"{ceiling:.2f}x faster"),
    ]:
        rows.append((label, value, "reported", None))
    startup = report["startup"]["startup"]["median"]
    rows.append(
        ("7. unconfigured plugin, import at pytest start-up", f"{startup * 1000:.1f} ms", "≤ 30 ms", startup <= 0.03)
    )
    per_test = report["startup"]["per_test"]
    noise = f"runs from {per_test['min'] * 1e6:+.0f} to {per_test['max'] * 1e6:+.0f} µs"
    rows.append(
        ("7. unconfigured plugin, per test", f"{per_test['median'] * 1e6:.1f} µs ({noise})", "not measurable", None)
    )
    return rows


def mariadb_targets(server: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """The rows of the throwaway MariaDB server (item 5 of the MySQL issue), or why it was not measured."""
    if "error" in server or not server:
        reason = server.get("error", "not in this run")[:120]
        return [("5. MariaDB server ready, data folder cached", "not measured: " + reason, "reported", None)]
    warm, cold, plain, stop = (server[key]["median"] for key in ("warm", "cold", "plain", "stop"))
    return [
        ("5. MariaDB server ready, data folder cached", f"{warm:.3f} s", "≤ 0.25 s", warm <= 0.25),
        ("5. MariaDB server ready, cold (mariadb-install-db)", f"{cold:.3f} s", "reported", None),
        ("5. MariaDB server ready, cached vs cold", f"{warm / cold:.2f}x", "reported", None),
        (
            "5. MariaDB server ready, cold vs plain mariadb-install-db + start",
            f"{cold / plain:.2f}x",
            "≤ 1.2x",
            cold / plain <= 1.2,
        ),
        ("5. MariaDB server stopped, folder removed", f"{stop:.3f} s", "reported", None),
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
        "tests' start to the next test's start; extra = that minus no isolation's, in the same session.",
    ]
    strategy_rows = []
    for name in _in_order(report["strategies"]["extra"]):
        extra, per = report["strategies"]["extra"][name], report["strategies"]["per_test"][name]
        strategy_rows.append(
            (LABELS[name], _ms(per["median"]), _ms(extra["median"]), _ms(extra["min"]), _ms(extra["max"]))
        )
    target_rows = [
        (name, value, bound, "met" if met else ("—" if met is None else "NOT met"))
        for name, value, bound, met in targets(report)
    ]
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
    (out / "results.md").write_text(markdown(facts, strategy_rows, target_rows, mariadb_rows))
    (out / "results.rst").write_text(restructured(facts, strategy_rows, target_rows, mariadb_rows))
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
TARGET_HEADER = ("target", "measured", "bound", "")


def markdown(
    facts: list[str],
    strategies: list[tuple[str, ...]],
    targets: list[tuple[str, ...]],
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
                "## Targets",
                table(TARGET_HEADER, targets),
                "![extra time per test](chart.png)",
            ]
        )
        + "\n"
    )


def restructured(
    facts: list[str],
    strategies: list[tuple[str, ...]],
    targets: list[tuple[str, ...]],
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
                "**Targets**",
                table(TARGET_HEADER, targets),
            ]
        )
        + "\n"
    )


def chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    extra = report["strategies"]["extra"]
    names = [name for name in _in_order(extra) if name != "none"]
    medians = [extra[name]["median"] * 1000 for name in names]
    low = [m - extra[name]["min"] * 1000 for m, name in zip(medians, names, strict=True)]
    high = [extra[name]["max"] * 1000 - m for m, name in zip(medians, names, strict=True)]
    colors = ["#2a7ab0" if name.startswith("ours") else "#9aa5b1" for name in names]
    figure, axes = plt.subplots(figsize=(9, 0.45 * len(names) + 1.2))
    axes.barh([LABELS[name] for name in names], medians, xerr=[low, high], color=colors, capsize=3)
    axes.invert_yaxis()
    axes.set_xlabel("extra time per test over no isolation, ms (median, min-max)")
    axes.set_title(f"{report['rounds']} tests each, {report['reps']} sessions; blue: peewee-async-testing")
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
