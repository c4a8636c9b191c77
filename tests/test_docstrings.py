"""Every example in a public docstring runs (the API reference shows them), against the real server.

Each ``::`` literal block is run as a module whose top level may ``await``, with ``database`` (aiopg)
and the models ``User``, ``Author`` and ``Book`` on it; unittest classes it defines are then run by unittest.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import unittest
from collections.abc import Iterator
from typing import Any

import peewee
import peewee_async
import psycopg2
import pytest

import peewee_async_testing
from peewee_async_testing import PostgresServer, clear_tables
from peewee_async_testing import plugin as plugin_module
from peewee_async_testing import server as server_module
from peewee_async_testing.pools import pool_on_running_loop

from .helpers import admin, needs_one_loop, run_on_own_loop


def documented() -> Iterator[tuple[str, str]]:
    """(name, docstring) of the package, its public names and its fixtures."""
    yield "peewee_async_testing", peewee_async_testing.__doc__ or ""
    yield "peewee_async_testing.server", server_module.__doc__ or ""
    for name in peewee_async_testing.__all__:
        obj = getattr(peewee_async_testing, name)
        yield name, inspect.getdoc(obj) or ""
        for member_name, member in vars(obj).items() if inspect.isclass(obj) else ():
            if not member_name.startswith("_") or member_name == "__call__":
                yield f"{name}.{member_name}", inspect.getdoc(member) or ""
    for name in ("in_transaction", "clear_tables", "peewee_database", "peewee_server"):
        yield name, inspect.getdoc(getattr(plugin_module, name)) or ""


def literal_blocks(doc: str) -> list[str]:
    """The indented blocks that follow a line ending in ``::``."""
    blocks, lines = [], doc.splitlines()
    for index, line in enumerate(lines):
        if line.rstrip().endswith("::"):
            body = []
            for following in lines[index + 1 :]:
                if following.strip() and not following.startswith((" ", "\t")):
                    break
                body.append(following)
            blocks.append(textwrap.dedent("\n".join(body)).strip())
    return [block for block in blocks if block]


EXAMPLES = [(f"{name}#{i}", block) for name, doc in documented() for i, block in enumerate(literal_blocks(doc))]


def test_the_public_docstrings_have_examples() -> None:
    assert len(EXAMPLES) >= 7, [name for name, _ in EXAMPLES]


@pytest.fixture(scope="module")
def docs_database(pg_server: PostgresServer) -> Iterator[Any]:
    admin(pg_server, "CREATE DATABASE docstrings")
    database = peewee_async.PostgresqlDatabase(**pg_server.connect_params("docstrings"))
    yield database
    admin(pg_server, "DROP DATABASE docstrings WITH (FORCE)")


def models(database: Any) -> dict[str, Any]:
    class User(peewee_async.AioModel):  # type: ignore[misc]  # peewee-async ships no types: AioModel is Any
        name = peewee.CharField()

    class Author(peewee_async.AioModel):  # type: ignore[misc]  # peewee-async ships no types: AioModel is Any
        name = peewee.CharField(unique=True)

    class Book(peewee_async.AioModel):  # type: ignore[misc]  # peewee-async ships no types: AioModel is Any
        title = peewee.CharField()
        author = peewee.ForeignKeyField(Author, backref="books")

    found = {"User": User, "Author": Author, "Book": Book}
    database.bind(list(found.values()))
    return found


@pytest.mark.parametrize(
    ("name", "block"),
    [
        pytest.param(*example, marks=[needs_one_loop] if "AioDatabaseTestCase" in example[1] else [])
        for example in EXAMPLES
    ],
    ids=[name for name, _ in EXAMPLES],
)
def test_the_docstring_example_runs(name: str, block: str, docs_database: Any) -> None:
    namespace: dict[str, Any] = {
        "__name__": name,
        "database": docs_database,
        "peewee": peewee,
        "peewee_async": peewee_async,
        "psycopg2": psycopg2,
        "PostgresServer": PostgresServer,
        **{export: getattr(peewee_async_testing, export) for export in peewee_async_testing.__all__},
        **models(docs_database),
    }
    with docs_database.allow_sync():
        docs_database.create_tables([namespace["User"], namespace["Author"], namespace["Book"]])
    try:
        code = compile(block, name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)

        async def run() -> None:
            async with pool_on_running_loop(docs_database):
                result = eval(code, namespace)  # a coroutine when the block awaits at its top level
                if inspect.iscoroutine(result):
                    await result

        run_on_own_loop(run())
        for value in list(namespace.values()):
            if inspect.isclass(value) and issubclass(value, unittest.TestCase) and value.__module__ == name:
                result = unittest.TestResult()
                unittest.defaultTestLoader.loadTestsFromTestCase(value).run(result)
                assert result.wasSuccessful(), result.errors + result.failures
    finally:
        clear_tables(docs_database)
        with docs_database.allow_sync():
            docs_database.drop_tables([namespace["User"], namespace["Author"], namespace["Book"]])
