import pytest

from shop.db import database
from shop.models import Customer, Order
from shop.services import (
    EmailTaken,
    nightly_report,
    place_order,
    register,
    revenue_by_customer,
)


async def test_register_normalises_the_email():
    customer = await register("  Ada@Example.com ", "Ada")
    assert customer.email == "ada@example.com"


async def test_each_test_starts_empty():
    # test_register_normalises_the_email's row was rolled back with its transaction
    assert await Customer.select().aio_count() == 0


async def test_an_email_registers_once():
    await register("ada@example.com", "Ada")
    with pytest.raises(EmailTaken):
        await register("ADA@example.com", "Ada again")


async def test_revenue_adds_up_per_customer():
    ada = await register("ada@example.com", "Ada")
    grace = await register("grace@example.com", "Grace")
    for customer, cents in [(ada, 500), (ada, 250), (grace, 100)]:
        await place_order(customer, cents)
    assert await revenue_by_customer() == {
        "ada@example.com": 750,
        "grace@example.com": 100,
    }


async def test_free_orders_are_refused():
    ada = await register("ada@example.com", "Ada")
    with pytest.raises(ValueError, match="must cost something"):
        await place_order(ada, 0)
    assert await Order.select().aio_count() == 0


async def test_the_sync_report_sees_committed_rows(clear_tables):
    # Sync queries use their own connection and cannot see a test transaction:
    # asking for clear_tables turns the transaction off for this test, and empties
    # the tables after it.
    ada = await register("ada@example.com", "Ada")
    await place_order(ada, 500)
    assert nightly_report() == ["ada@example.com: 1 order(s)"]


def test_the_report_starts_empty_too(clear_tables):
    assert nightly_report() == []


def test_the_app_runs_on_the_test_database():
    # Not the production "shop": the plugin pointed it at test_shop (under
    # pytest-xdist, one per worker: test_shop_gw0, test_shop_gw1, ...).
    assert database.database.startswith("test_shop")
