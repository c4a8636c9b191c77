"""The configured database object never reaches the database it was configured with: whoever asks, when.

The inner app's database is ``shop`` on the "production" server (tests/production.py), password-protected and
logging every connection; the ``production`` fixture fails the test if the session reached it at all.
"""

from __future__ import annotations

import pytest

from ..helpers import needs_one_loop
from .project import SHOP, SHOP_DB, SHOP_MODELS, make_ini


def test_a_test_that_is_not_isolated_is_refused(shop: pytest.Pytester) -> None:
    shop.makepyfile(
        """
        import pytest
        from app.db import database
        from app.models import Item
        from peewee_async_testing import DatabaseAccessError

        REFUSED = "not isolated.*peewee_db.*in_transaction or clear_tables.*peewee_async_autouse = true"

        async def test_async():
            with pytest.raises(DatabaseAccessError, match=REFUSED):
                await Item.aio_create(name="async")

        def test_sync():
            with pytest.raises(DatabaseAccessError, match=REFUSED), database.allow_sync():
                Item.create(name="sync")

        async def test_asking_for_the_database_takes_it_as_it_is(peewee_database):
            assert await Item.select().aio_count() == 0

        @pytest.fixture
        async def seeded():
            await Item.aio_create(name="from a fixture")

        async def test_nor_are_its_function_scoped_fixtures(seeded):
            pass

        @pytest.fixture(scope="module")
        async def module_seeded():
            await Item.aio_create(name="module")
            yield
            await Item.delete().aio_execute()

        async def test_but_a_wider_fixture_may_use_it(module_seeded):
            with pytest.raises(DatabaseAccessError, match=REFUSED):
                await Item.select().aio_count()

        @pytest.mark.peewee_db
        async def test_a_marked_one_writes_to_the_test_database():
            await Item.aio_create(name="async")
            assert database.database == "test_shop"
        """
    )
    result = shop.runpytest()
    result.assert_outcomes(passed=5, errors=1)
    result.stdout.fnmatch_lines(["*DatabaseAccessError: *test_nor_are_its_function_scoped_fixtures: the test is not*"])


def test_every_case_of_a_parametrized_test_that_is_not_isolated_is_refused(shop: pytest.Pytester) -> None:
    # pytest gives a parametrized test's cases one fixture closure: the first case's set-up must not make the
    # others look as if they asked for the database.
    shop.makepyfile(
        """
        import pytest
        from app.models import Item
        from peewee_async_testing import DatabaseAccessError

        @pytest.mark.parametrize("name", ["first", "second", "third"])
        async def test_writes(name):
            with pytest.raises(DatabaseAccessError, match="not isolated"):
                await Item.aio_create(name=name)

        @pytest.mark.parametrize("name", ["first", "second"])
        async def test_asks(name, peewee_database):
            assert await Item.select().aio_count() == 0
        """
    )
    shop.runpytest("-p", "no:randomly").assert_outcomes(passed=5)


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one process", "xdist"])
def test_a_wider_fixture_reaches_the_test_database(shop: pytest.Pytester, workers: list[str]) -> None:
    make_ini(shop, SHOP + "peewee_async_autouse = true")
    shop.makepyfile(
        """
        import pytest
        import pytest_asyncio
        from app.db import database
        from app.models import Item

        @pytest_asyncio.fixture(scope="module", loop_scope="session")
        async def seeded():
            await Item.aio_create(name="module")
            yield
            await Item.delete().aio_execute()

        @pytest.fixture(scope="session")
        def sync_seeded():
            with database.allow_sync():
                Item.create(name="session")
            yield
            with database.allow_sync():
                Item.delete().execute()

        async def test_one(seeded, sync_seeded):
            assert database.database.startswith("test_shop")
            assert sorted(item.name for item in await Item.select().aio_execute()) == ["module", "session"]
            await Item.aio_create(name="mine")

        async def test_two(seeded, sync_seeded):
            assert await Item.select().aio_count() == 2
        """
    )
    shop.runpytest(*workers).assert_outcomes(passed=2)


@needs_one_loop
def test_unittest_classes_run_on_the_test_database(shop: pytest.Pytester) -> None:
    shop.makepyfile(
        """
        import unittest
        from app.db import database
        from app.models import Item
        from peewee_async_testing import AioDatabaseTestCase, DatabaseAccessError

        class TestShop(AioDatabaseTestCase):
            database = database

            @classmethod
            async def asyncSetUpTestData(cls):
                await Item.aio_create(name="class")

            async def test_one(self):
                assert database.database == "test_shop"
                await Item.aio_create(name="one")
                assert await Item.select().aio_count() == 2

            async def test_two(self):
                assert await Item.select().aio_count() == 1

        class TestPlain(unittest.IsolatedAsyncioTestCase):
            async def test_refused(self):
                with self.assertRaisesRegex(DatabaseAccessError, "AioDatabaseTestCase"):
                    await Item.select().aio_count()
        """
    )
    shop.runpytest().assert_outcomes(passed=3)


def test_queries_at_collection_are_refused(shop: pytest.Pytester) -> None:
    shop.makepyfile(
        test_at_import="""
        import asyncio
        from app.models import Item

        LOOP = asyncio.new_event_loop()  # (not asyncio.run(), which would leave this thread with no current
        try:  # loop: on Python 3.10, the outer session's)
            COUNT = LOOP.run_until_complete(Item.select().aio_count())
        finally:
            LOOP.close()
        """,
        test_other="async def test_x():\n    pass\n",
    )
    result = shop.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*DatabaseAccessError: *still points at your real database 'shop'*"])


def test_queries_while_the_ini_file_imports_the_app_are_refused(shop: pytest.Pytester) -> None:
    shop.path.joinpath("app", "models.py").write_text(
        SHOP_MODELS + "\nwith database.allow_sync():\n    Item.select().count()\n"
    )
    shop.makepyfile("async def test_x():\n    pass\n")
    result = shop.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: peewee-async-testing: importing 'app.models'*refuses queries at import*"])


def test_a_transaction_test_case_by_hand_runs_on_the_test_database(shop: pytest.Pytester) -> None:
    shop.makepyfile(
        """
        from app.db import database
        from app.models import Item
        from peewee_async_testing import TransactionTestCase

        async def test_by_hand():
            async with TransactionTestCase(database):
                await Item.aio_create(name="by hand")
                assert await Item.select().aio_count() == 1

        @TransactionTestCase(database)
        async def test_decorated():
            assert await Item.select().aio_count() == 0
        """
    )
    shop.runpytest_subprocess().assert_outcomes(passed=2)  # one package, as a user has: no re-import


def test_the_code_under_test_cannot_point_it_back(shop: pytest.Pytester) -> None:
    shop.makepyfile(
        """
        import os
        import pytest
        from app.db import database
        from app.models import Item
        from peewee_async_testing import DatabaseAccessError

        REAL = dict(host=os.environ["PROD_HOST"], port=int(os.environ["PROD_PORT"]), user="app",
                    password=os.environ["PROD_PASSWORD"])

        @pytest.mark.peewee_db(isolation="clear")  # every query takes a connection of its own
        async def test_app_start_up_calls_init():
            database.init("shop", **REAL)  # what an app's start-up hook may do
            with pytest.raises(DatabaseAccessError, match="pointed back at your real database 'shop'"):
                await Item.aio_create(name="start-up")
            database.init("shop_replica", **REAL)
            with pytest.raises(DatabaseAccessError, match="pointed at 'shop_replica' during the session"):
                await Item.aio_create(name="start-up")
        """
    )
    result = shop.runpytest()
    result.assert_outcomes(passed=1, errors=1)  # and its clear_tables cannot reach the test database any more
    result.stdout.fnmatch_lines(["*cannot empty the tables written since its mark in database 'test_shop'*"])


def test_a_model_bound_to_another_database_is_reported(shop: pytest.Pytester) -> None:
    shop.makepyfile(
        """
        import peewee_async
        import pytest
        from app.models import Item

        @pytest.fixture
        def rebound():
            other = peewee_async.PostgresqlDatabase("elsewhere")
            with Item.bind_ctx(other):
                yield

        @pytest.mark.peewee_db
        async def test_rebound(rebound):
            pass
        """
    )
    result = shop.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*app.models.Item is bound to *, not to the configured database app.db:database*"])


def test_a_test_database_that_cannot_be_made_is_said_once(shop: pytest.Pytester) -> None:
    shop.makepyfile("\n".join(f"async def test_{n}(in_transaction):\n    pass\n" for n in range(3)))
    result = shop.runpytest("--peewee-dsn", "postgresql://postgres@127.0.0.1:1/postgres")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert output.count("Connection refused") == 1, output
    assert "no tests ran" in output, output


SEEDS_AT_IMPORT = """
with database.allow_sync():
    Item.get_or_create(name="seeded at import")
"""


@pytest.mark.parametrize(
    "conftest",
    [
        "import app.models\n",
        "import asyncio\nfrom app.models import Item\n\nasyncio.run(Item.select().aio_count())\n",
        "from app.models import Item\n\n\ndef pytest_configure(config):\n    with Item._meta.database.allow_sync():\n"
        "        Item.get_or_create(name='configure')\n",
    ],
    ids=["the app seeds as a conftest imports it", "a conftest queries", "a conftest's pytest_configure writes"],
)
def test_a_conftest_cannot_reach_it(shop: pytest.Pytester, conftest: str) -> None:
    shop.path.joinpath("app", "models.py").write_text(SHOP_MODELS + SEEDS_AT_IMPORT)
    shop.makeconftest(conftest)
    shop.makepyfile("import pytest\n\n@pytest.mark.peewee_db\nasync def test_x():\n    pass\n")
    result = shop.runpytest_subprocess()
    assert result.ret != pytest.ExitCode.OK
    result.stderr.fnmatch_lines(["*DatabaseAccessError: peewee-async-testing: *connected to a database as pytest*"])


def test_a_proxy_in_the_ini_file_cannot_be_initialised_again(shop: pytest.Pytester) -> None:
    shop.path.joinpath("app", "db.py").write_text(
        SHOP_DB.replace("database = peewee_async", "real = peewee_async")
        + "\nimport peewee\n\ndatabase = peewee.DatabaseProxy()\ndatabase.initialize(real)\n\n\n"
        "def start_up():\n    database.initialize(peewee_async.PostgresqlDatabase('shop', **real.connect_params))\n"
    )
    shop.makepyfile(
        """
        import pytest
        from app.db import database, real, start_up
        from app.models import Item
        from peewee_async_testing import DatabaseAccessError

        @pytest.mark.peewee_db
        async def test_start_up():
            with pytest.raises(DatabaseAccessError, match="DatabaseProxy .* cannot be initialised again"):
                start_up()
            assert database.obj is real
            await Item.aio_create(name="to the test database")

        @pytest.mark.peewee_db(isolation="clear")
        async def test_next():
            assert await Item.select().aio_count() == 0
        """
    )
    shop.runpytest().assert_outcomes(passed=2)


def test_an_override_still_cannot_reach_the_real_database(shop: pytest.Pytester) -> None:
    shop.makeconftest(
        """
        import pytest
        from app.db import database

        @pytest.fixture(scope="session")
        def peewee_database():
            return database  # forgot to point it anywhere
        """
    )
    shop.makepyfile(
        """
        import pytest
        from app.models import Item
        from peewee_async_testing import DatabaseAccessError

        async def test_in_a_transaction(in_transaction):
            with pytest.raises(DatabaseAccessError, match="real database 'shop'"):
                await Item.aio_create(name="x")

        @pytest.mark.peewee_db(isolation="clear")
        async def test_clearing_tables():
            pass
        """
    )
    result = shop.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*refuses to empty the tables of database 'shop'*Nothing was sent to it*"])


def test_what_a_test_that_is_not_isolated_leaves_running_is_refused(shop: pytest.Pytester) -> None:
    shop.makepyfile(
        """
        import unittest
        import pytest
        from app.db import database
        from app.models import Item
        from peewee_async_testing import DatabaseAccessError

        refused = []

        @pytest.fixture
        async def writes_in_its_tear_down():
            yield
            try:
                await Item.aio_create(name="tear-down")
            except DatabaseAccessError as error:
                refused.append("tear-down")

        async def test_with_a_writing_tear_down(writes_in_its_tear_down):
            pass

        @pytest.fixture(scope="module")
        async def held():
            async with database.aio_connection():  # peewee-async keeps it for the task's later queries
                yield

        async def test_on_a_held_connection(held):
            with pytest.raises(DatabaseAccessError, match="not isolated"):
                await Item.aio_create(name="held")

        class TestPlain(unittest.TestCase):
            @classmethod
            def setUpClass(cls):
                try:
                    with database.allow_sync():
                        Item.create(name="setUpClass")
                except DatabaseAccessError:
                    refused.append("setUpClass")

            def test_nothing(self):
                pass

        @pytest.mark.peewee_db
        async def test_nothing_was_written():
            assert sorted(refused) == ["setUpClass", "tear-down"]
            assert await Item.select().aio_count() == 0
        """
    )
    shop.runpytest().assert_outcomes(passed=4)


@needs_one_loop
def test_an_aio_database_test_case_of_another_database_is_reported(shop: pytest.Pytester) -> None:
    shop.makepyfile(
        """
        import peewee_async
        from app.db import database
        from peewee_async_testing import AioDatabaseTestCase

        class TestElsewhere(AioDatabaseTestCase):
            database = peewee_async.PostgresqlDatabase("shop", **database.connect_params)

            async def test_x(self):
                pass
        """
    )
    result = shop.runpytest_subprocess()  # one package, as a user has: no re-import
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*TestElsewhere.database is not the configured database app.db:database*"])


def test_the_test_database_name_on_another_server_is_refused(shop: pytest.Pytester) -> None:
    shop.makepyfile(
        """
        import os
        import pytest
        from app.db import database
        from app.models import Item
        from peewee_async_testing import DatabaseAccessError

        @pytest.mark.peewee_db(isolation="clear")
        async def test_x():
            database.init("test_shop", host=os.environ["PROD_HOST"], port=int(os.environ["PROD_PORT"]))
            with pytest.raises(DatabaseAccessError, match="pointed at 'test_shop' during the session"):
                await Item.aio_create(name="x")
        """
    )
    result = shop.runpytest()
    result.assert_outcomes(passed=1, errors=1)  # clear_tables does not empty the namesake on the other server
    result.stdout.fnmatch_lines(["*mark in database 'test_shop' on *: the database object was pointed at*Nothing*"])


def test_without_pytest_asyncio_the_error_is_said_once(shop: pytest.Pytester) -> None:
    shop.makepyfile("async def test_x():\n    pass\n")
    result = shop.runpytest("-p", "no:asyncio")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: peewee_async_database = app.db:database is set, but pytest-asyncio*"])


def test_the_apps_own_address_settings_do_not_survive_the_pointing(shop: pytest.Pytester) -> None:
    shop.path.joinpath("app", "db.py").write_text(
        SHOP_DB.replace('"shop", host=os.environ["PROD_HOST"]', '"shop", host="db.prod.internal", hostaddr="10.9.9.9"')
    )
    shop.makepyfile(
        """
        import os
        import pytest
        from app.db import database
        from app.models import Item
        from peewee_async_testing import DatabaseAccessError

        @pytest.mark.peewee_db(isolation="clear")
        async def test_pointed():
            assert "hostaddr" not in database.connect_params  # it would send libpq to the real server's address
            await Item.aio_create(name="on the test database")
            pool = database.pool_backend
            database.init("test_shop", hostaddr=os.environ["PROD_HOST"])  # the server's name, another address
            with pytest.raises(DatabaseAccessError, match="pointed at 'test_shop' during the session"):
                await Item.aio_create(name="elsewhere")
            database.connect_params.pop("hostaddr"), database.pool_params.pop("hostaddr")
            database.pool_backend = pool  # back, for clear_tables
        """
    )
    shop.runpytest().assert_outcomes(passed=1)
