"""The pytester project of the plugin's tests: the app, its configured database, and this run's server."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator

import pytest

import peewee_async_testing
from peewee_async_testing import PostgresServer

from ..helpers import admin, databases
from ..production import Production
from .project import APP_DB, APP_MODELS, SHOP, SHOP_DB, SHOP_MODELS, make_ini

# Every module of the package is imported before the first inner run: pytester drops the modules that an in-process
# run imported first, and a module imported again is another module, whose state (the captures open, the blocks
# open) the modules imported before it never see. A later inner run then failed by the order the tests ran in.
for _module in pkgutil.walk_packages(peewee_async_testing.__path__, "peewee_async_testing."):
    importlib.import_module(_module.name)


@pytest.fixture
def app_database(pg_server: PostgresServer) -> Iterator[str]:
    """The inner app's configured database: real, with a sentinel row the plugin must leave alone."""
    admin(pg_server, "CREATE DATABASE app")
    admin(pg_server, "CREATE TABLE note (id serial PRIMARY KEY, text varchar(255) UNIQUE)", database="app")
    admin(pg_server, "INSERT INTO note (text) VALUES ('sentinel')", database="app")
    yield "app"
    assert admin(pg_server, "SELECT text FROM note", database="app") == [("sentinel",)], "the app database was touched"
    left = {name for name in databases(pg_server) if name.startswith("test_app")}
    for name in left | {"app"}:
        admin(pg_server, f'DROP DATABASE "{name}" WITH (FORCE)')
    assert not left, f"the inner run left test databases behind: {left}"


@pytest.fixture
def inner(
    pytester: pytest.Pytester, pg_server: PostgresServer, app_database: str, monkeypatch: pytest.MonkeyPatch
) -> pytest.Pytester:
    """A pytester project holding the app; inner runs make their test databases on this run's server."""
    pytester.mkpydir("app")
    pytester.path.joinpath("app", "db.py").write_text(APP_DB)
    pytester.path.joinpath("app", "models.py").write_text(APP_MODELS)
    pytester.syspathinsert()
    make_ini(pytester)
    monkeypatch.setenv("INNER_HOST", pg_server.host)
    monkeypatch.setenv("INNER_PORT", str(pg_server.port))
    monkeypatch.setenv("PEEWEE_ASYNC_TESTING_DSN", pg_server.dsn)
    monkeypatch.delenv("PEEWEE_ASYNC_TESTING_DB_SUFFIX", raising=False)
    return pytester


@pytest.fixture(autouse=True)
def _not_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner sessions are not workers of this run, even when this run uses pytest-xdist."""
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def shop(
    inner: pytest.Pytester, production: Production, pg_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[pytest.Pytester]:
    """The inner project, its app on the production server's ``shop``; its test databases on this run's server."""
    inner.path.joinpath("app", "db.py").write_text(SHOP_DB)
    inner.path.joinpath("app", "models.py").write_text(SHOP_MODELS)
    make_ini(inner, SHOP)
    monkeypatch.setenv("PROD_HOST", production.host)
    monkeypatch.setenv("PROD_PORT", str(production.port))
    monkeypatch.setenv("PROD_PASSWORD", production.password)
    yield inner
    assert not {name for name in databases(pg_server) if name.startswith("test_shop")}, "a test database was left"
