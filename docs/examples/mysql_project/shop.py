"""The app: its database is MySQL, which the tests never reach (the plugin makes test_shop instead)."""

import peewee
import peewee_async

database = peewee_async.MySQLDatabase("shop", host="db.example", port=3306, user="shop")


class Customer(peewee_async.AioModel):
    email = peewee.CharField(unique=True)

    class Meta:
        database = database


class Order(peewee_async.AioModel):
    customer = peewee.ForeignKeyField(Customer, backref="orders")

    class Meta:
        database = database
