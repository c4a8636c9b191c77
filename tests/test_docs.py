"""Every example of the documentation runs, against this run's server; none is left out of the pages."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from peewee_async_testing import PostgresServer

from .helpers import needs_one_loop

DOCS = Path(__file__).parent.parent / "docs"
EXAMPLES = sorted((DOCS / "examples").glob("*.py"))


@pytest.mark.parametrize(
    "example",
    [
        pytest.param(path, marks=needs_one_loop) if "AioDatabaseTestCase" in path.read_text() else path
        for path in EXAMPLES
    ],
    ids=[path.name for path in EXAMPLES],
)
def test_the_example_runs(example: Path, pg_server: PostgresServer) -> None:
    env = dict(os.environ, PEEWEE_ASYNC_TESTING_DSN=pg_server.dsn)
    result = subprocess.run([sys.executable, str(example)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_the_example_is_shown_in_the_docs(example: Path) -> None:
    pages = "\n".join(page.read_text() for page in DOCS.glob("*.rst"))
    assert f"literalinclude:: examples/{example.name}" in pages


PROJECTS = sorted(path.parent for path in (DOCS / "examples").glob("*/pytest.ini"))


@pytest.mark.parametrize("project", PROJECTS, ids=[path.name for path in PROJECTS])
def test_the_example_project_passes(project: Path, pg_server: PostgresServer) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_XDIST")}
    env["PEEWEE_ASYNC_TESTING_DSN"] = pg_server.dsn
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", str(project)], cwd=project, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout
    pages = "\n".join(page.read_text() for page in DOCS.glob("*.rst"))
    assert f"literalinclude:: examples/{project.name}/test_" in pages


def test_every_test_the_guarantees_page_names_exists() -> None:
    """A promise of docs/guarantees.rst names the tests that prove it: each must be there, so that a renamed or
    removed test cannot leave a promise unproven without the page saying so."""

    root = DOCS.parent
    named = re.findall(r"``(tests/[\w/]+\.py)::(\w+)``", (DOCS / "guarantees.rst").read_text())
    assert len(named) > 40
    missing = [f"{path}::{name}" for path, name in named if f"def {name}(" not in (root / path).read_text()]
    assert not missing, f"docs/guarantees.rst names tests that do not exist: {missing}"


def test_the_quickstart_shows_what_its_run_prints(tmp_path: Path) -> None:
    """The output docs/quickstart.rst tells the reader to expect is what running its project prints (ports,
    times, versions and paths aside)."""

    page = (DOCS / "quickstart.rst").read_text()
    shown_lines = []
    for line in page.split("$ python -m pytest\n", 1)[1].splitlines():
        if line and not line.startswith("    "):
            break  # the console block ends at the first line of text
        shown_lines.append(line.strip())
    project = tmp_path / "shop"
    shutil.copytree(DOCS.parent / "examples", project)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "PEEWEE_ASYNC_TESTING"))}
    result = subprocess.run(
        [sys.executable, "-m", "pytest"], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr

    def stable(line: str) -> str:
        line = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", line)
        return re.sub(r" in [\d.]+s ", " in TIMEs ", line)

    varying = ("platform ", "rootdir: ", "plugins: ", "asyncio: ")  # by machine, path and versions
    expected = [stable(line) for line in shown_lines if not line.startswith(varying)]
    printed = [stable(line.strip()) for line in result.stdout.splitlines() if not line.startswith(varying)]
    assert len(expected) >= 8
    # In any order: where pytest puts a plugin's header line among its own differs between its versions.
    assert sorted(line for line in printed if line) == sorted(line for line in expected if line)


def test_every_setting_fixture_and_variable_is_documented() -> None:
    """Each ini key, command-line option, environment variable, public fixture and marker the package defines is
    named in a page of the docs (the changelog aside): a new one cannot ship unexplained."""

    package = DOCS.parent / "peewee_async_testing"
    source = "\n".join(path.read_text() for path in package.glob("*.py"))
    pages = "\n".join(page.read_text() for page in DOCS.glob("*.rst") if page.name != "changelog.rst")
    fixtures = re.findall(
        r"@pytest(?:_asyncio)?\.fixture[^\n]*\n(?:@[^\n]*\n)*(?:async )?def ([a-z]\w*)",
        (package / "fixtures.py").read_text(),
    )
    defined = {
        "ini key": re.findall(r'addini\(\s*"(\w+)"', source),
        "option": re.findall(r'addoption\(\s*"(--[\w-]+)"', source),
        "environment variable": sorted(set(re.findall(r"PEEWEE_ASYNC_TESTING_[A-Z_]+", source))),
        "fixture": fixtures,
        "marker": re.findall(r'"markers",\s*"(\w+)', source),
    }
    assert all(defined.values()), defined  # each pattern still finds what it looks for
    missing = [f"{kind} {name}" for kind, names in defined.items() for name in names if name not in pages]
    assert not missing, f"not documented in docs/*.rst: {missing}"
