"""A connection of the test database that fails mid-session shows no password, whatever pytest's traceback options.

peewee's synchronous connect goes through psycopg2's ``connect(dsn, ...)``, whose arguments long tracebacks show:
the gate raises its error afresh. For aiopg the test is a guard: aiopg keeps the connection string in attributes,
which tracebacks do not show, and pytest shortens the keyword dicts they do show.
"""

from __future__ import annotations

import pytest

from ..production import PASSWORD, Production

REFUSED_MID_SESSION = """
import os

import psycopg2
import pytest
from app.models import Item


def set_password(password):
    admin = psycopg2.connect(dbname="postgres", host=os.environ["PROD_HOST"], port=os.environ["PROD_PORT"],
                             user="postgres")
    admin.autocommit = True
    admin.cursor().execute("ALTER ROLE app PASSWORD %s", (password,))
    admin.close()


@pytest.fixture
def password_changed():
    set_password("not the one the session has")
    yield
    set_password(os.environ["PROD_PASSWORD"])


@pytest.mark.peewee_db(isolation="clear")
@pytest.mark.asyncio(loop_scope="function")  # a pool of its own: it connects now
async def test_the_password_changed_under_it(password_changed):
    await Item.aio_create(name="x")
"""


@pytest.mark.parametrize("options", [[], ["--tb=long", "-l"], ["--tb=native"]], ids=["default", "long", "native"])
def test_a_failed_connection_shows_no_password(
    shop: pytest.Pytester, production: Production, options: list[str]
) -> None:
    shop.makepyfile(REFUSED_MID_SESSION)
    result = shop.runpytest("--peewee-dsn", production.dsn(), *options)
    result.assert_outcomes(failed=1)
    output = result.stdout.str() + result.stderr.str()
    assert "password authentication failed" in output
    assert PASSWORD not in output


SYNC_REFUSED_MID_SESSION = REFUSED_MID_SESSION.replace(
    """@pytest.mark.peewee_db(isolation="clear")
@pytest.mark.asyncio(loop_scope="function")  # a pool of its own: it connects now
async def test_the_password_changed_under_it(password_changed):
    await Item.aio_create(name="x")""",
    """@pytest.mark.peewee_db(isolation="clear")
def test_the_password_changed_under_it(password_changed):
    database = Item._meta.database
    database.close()  # the session's sync connection: the next query connects anew
    with database.allow_sync():
        Item.create(name="x")""",
)


@pytest.mark.parametrize("options", [[], ["--tb=long", "-l"]], ids=["default", "long"])
def test_a_failed_sync_connection_shows_no_password(
    shop: pytest.Pytester, production: Production, options: list[str]
) -> None:
    assert SYNC_REFUSED_MID_SESSION != REFUSED_MID_SESSION
    shop.makepyfile(SYNC_REFUSED_MID_SESSION)
    result = shop.runpytest("--peewee-dsn", production.dsn(), *options)
    output = result.stdout.str() + result.stderr.str()
    assert "password authentication failed" in output
    assert PASSWORD not in output
