"""The package's public face: its names, its type marker, and an import that stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import peewee_async_testing


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
