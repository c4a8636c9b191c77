"""The package's public face: its names, its type marker, and an import that stays light."""

from __future__ import annotations

import configparser
import re
import subprocess
import sys
from pathlib import Path

import pytest

import peewee_async_testing
from peewee_async_testing import PostgresServer


def test_all_is_sorted_and_importable() -> None:
    assert peewee_async_testing.__all__ == sorted(peewee_async_testing._EXPORTS)
    for name in peewee_async_testing.__all__:
        assert getattr(peewee_async_testing, name) is not None


def test_the_issue_names_are_public() -> None:
    from peewee_async_testing import PostgresServer, TransactionTestCase, aio_clear_tables  # noqa: F401


def test_importing_the_package_does_not_import_pytest() -> None:
    code = "import sys, peewee_async_testing; print('pytest' in sys.modules, 'pytest_asyncio' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.split() == ["False", "False"]


def test_the_package_is_typed() -> None:
    assert (Path(peewee_async_testing.__file__).parent / "py.typed").is_file()


ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def test_the_readme_shows_the_commands_that_ci_runs() -> None:
    noxfile = (ROOT / "noxfile.py").read_text()
    commands = re.findall(r"^(EXAMPLES_COMMAND|TESTS_COMMAND) = '(.*)'$", noxfile, re.M)
    assert [name for name, _ in commands] == ["EXAMPLES_COMMAND", "TESTS_COMMAND"]
    for _, command in commands:
        assert re.search(rf"^{re.escape(command)}(\s+#.*)?$", README, re.M), f"the README lacks {command!r}"


def test_the_readme_links_work_on_pypi() -> None:
    relative = [target for target in re.findall(r"\]\(([^)]+)\)", README) if not target.startswith("https://")]
    assert relative == [], "PyPI shows the README without the repository: these links would be dead there"


def test_every_claimed_python_is_a_classifier_from_python_requires_on() -> None:
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    claimed = re.findall(r":: Python :: (3\.\d+)$", setup["metadata"]["classifiers"], re.M)
    lowest = re.fullmatch(r">=\s*(3\.\d+)", setup["options"]["python_requires"])
    assert lowest is not None
    assert claimed[0] == lowest.group(1)
    assert [int(version.split(".")[1]) for version in claimed] == list(
        range(int(claimed[0][2:]), int(claimed[-1][2:]) + 1)
    )


def test_the_readme_configuration_and_first_example_work_as_pasted(
    pytester: pytest.Pytester, pg_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    (ini,) = re.findall(r"```ini\n(.*?)```", README, re.S)
    example = re.findall(r"```python\n(.*?)```", README, re.S)[0]
    pytester.makefile(".ini", pytest=ini)
    pytester.mkpydir("myapp")
    params = pg_server.connect_params("myapp")
    pytester.path.joinpath("myapp", "db.py").write_text(
        f"import peewee_async\n\ndatabase = peewee_async.PostgresqlDatabase(**{params!r})\n"
    )
    pytester.path.joinpath("myapp", "models.py").write_text(
        "import peewee\nimport peewee_async\n\nfrom myapp.db import database\n\n\n"
        "class User(peewee_async.AioModel):\n    name = peewee.CharField()\n\n    class Meta:\n"
        "        database = database\n"
    )
    pytester.makepyfile(test_readme="from myapp.db import database\nfrom myapp.models import User\n" + example)
    pytester.syspathinsert()
    monkeypatch.setenv("PEEWEE_ASYNC_TESTING_DSN", pg_server.dsn)
    pytester.runpytest("-W", "error", "-p", "no:cacheprovider").assert_outcomes(passed=1)
