"""The shop's database object, configured as the app runs in production.

The tests never touch this database: the pytest plugin makes
``test_shop`` on a throwaway server (or PEEWEE_ASYNC_TESTING_DSN's)
and points this object at it for the session.
"""

import os

import peewee_async

database = peewee_async.PostgresqlDatabase(
    os.environ.get("SHOP_DB_NAME", "shop"),
    host=os.environ.get("SHOP_DB_HOST", "db.internal"),
    user=os.environ.get("SHOP_DB_USER", "shop"),
    password=os.environ.get("SHOP_DB_PASSWORD", ""),
    pool_params={"minsize": 1, "maxsize": 10},
)
