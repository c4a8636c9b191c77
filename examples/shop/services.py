"""What the shop's web handlers call: async services, and one synchronous report."""

from peewee import fn

from shop.db import database
from shop.models import Customer, Order


class EmailTaken(Exception):
    pass


async def register(email: str, name: str) -> Customer:
    email = email.strip().lower()
    if await Customer.select().where(Customer.email == email).aio_exists():
        raise EmailTaken(email)
    return await Customer.aio_create(email=email, name=name)


async def place_order(customer: Customer, total_cents: int) -> Order:
    if total_cents <= 0:
        raise ValueError("an order must cost something")
    return await Order.aio_create(customer=customer, total_cents=total_cents)


async def revenue_by_customer() -> dict[str, int]:
    query = (
        Customer.select(Customer.email, fn.SUM(Order.total_cents).alias("revenue"))
        .join(Order)
        .group_by(Customer.email)
        .order_by(Customer.email)
    )
    return {row.email: row.revenue for row in await query.aio_execute()}


def nightly_report() -> list[str]:
    """A synchronous job (think: a cron script) that reads with plain peewee."""
    with database.allow_sync():
        return [
            f"{c.email}: {c.orders.count()} order(s)"
            for c in Customer.select().order_by(Customer.email)
        ]
