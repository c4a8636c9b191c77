"""The app's database: its real one, on its real server.

The tests never reach it: it need not even exist.
"""

import peewee
import peewee_async

database = peewee_async.PostgresqlDatabase(
    "shop", host="db.example.com", user="shop", password="not-for-tests"
)


class Item(peewee_async.AioModel):
    name = peewee.CharField(unique=True)

    class Meta:
        database = database
