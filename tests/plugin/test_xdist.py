"""Under pytest-xdist: a test database per worker, one throwaway server for all, one closing line."""

from __future__ import annotations

import pytest

from peewee_async_testing import PostgresServer

from ..helpers import databases
from .project import CONFIGURED, make_ini


def test_xdist_workers_each_get_a_clone(inner: pytest.Pytester, pg_server: PostgresServer) -> None:
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makepyfile(
        **{
            f"test_worker_{i}": f"""
            import os
            from app.db import database
            from app.models import Note

            async def test_records_its_database():
                await Note.aio_create(text="x")  # unique: clones must not share rows
                with open(os.path.join({str(inner.path)!r}, "seen_{i}"), "w") as out:
                    out.write(database.database)
            """
            for i in range(4)
        }
    )
    result = inner.runpytest("-n", "2", "-p", "no:benchmark")
    result.assert_outcomes(passed=4)
    seen = {inner.path.joinpath(f"seen_{i}").read_text() for i in range(4)}
    assert seen == {"test_app_gw0", "test_app_gw1"}
    assert not {name for name in databases(pg_server) if name.startswith("test_app")}


def test_xdist_workers_share_one_throwaway_server(inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PEEWEE_ASYNC_TESTING_DSN")
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makepyfile(
        **{
            f"test_worker_{i}": f"""
            import os
            from app.db import database

            async def test_records_its_server(peewee_server):
                assert not peewee_server.attached or peewee_server.host == "127.0.0.1"
                with open(os.path.join({str(inner.path)!r}, "seen_{i}"), "w") as out:
                    out.write(f"{{database.database}} {{database.connect_params['port']}}")
            """
            for i in range(4)
        }
    )
    inner.runpytest("-n", "2", "-p", "no:benchmark").assert_outcomes(passed=4)
    seen = [inner.path.joinpath(f"seen_{i}").read_text().split() for i in range(4)]
    assert {name for name, _ in seen} == {"test_app_gw0", "test_app_gw1"}
    assert len({port for _, port in seen}) == 1, f"the workers used different servers: {seen}"


@pytest.mark.parametrize("server", ["given", "throwaway"])
def test_under_xdist_the_controller_reports_the_workers_databases(
    inner: pytest.Pytester, pg_server: PostgresServer, monkeypatch: pytest.MonkeyPatch, server: str
) -> None:
    port = str(pg_server.port)
    if server == "throwaway":  # the controller's: the workers get it as a given server, and drop their databases
        monkeypatch.delenv("PEEWEE_ASYNC_TESTING_DSN")
        port = "*"
    make_ini(inner, CONFIGURED + "peewee_async_autouse = true")
    inner.makepyfile(**{f"test_{i}": "async def test_x():\n    pass\n" for i in range(4)})
    result = inner.runpytest("-n", "2", "-p", "no:benchmark")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "peewee-async-testing: database app.db:database, autouse on",
            "created: 2/2 workers",
            f"peewee-async-testing: test databases test_app_gw0, test_app_gw1 on 127.0.0.1:{port} (created, dropped)",
            "*= 4 passed in *",
        ]
    )
    assert result.stdout.str().count("peewee-async-testing: test database") == 1


def test_a_server_that_cannot_start_is_said_once_under_xdist(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PEEWEE_ASYNC_TESTING_DSN")
    make_ini(inner, CONFIGURED + "peewee_async_server_settings =\n    wrk_mem = 64MB")
    inner.makepyfile("async def test_it(peewee_database):\n    pass\n")
    result = inner.runpytest("-n", "2", "-p", "no:benchmark")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert result.stdout.str().count('unrecognized configuration parameter "wrk_mem"') == 1  # not per worker
