"""The app: a MySQL database, never reached by the tests (they get test_shop)."""

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
