import peewee
from peewee_async import AioModel

from shop.db import database


class BaseModel(AioModel):
    class Meta:
        database = database


class Customer(BaseModel):
    email = peewee.CharField(unique=True)
    name = peewee.CharField()


class Order(BaseModel):
    customer = peewee.ForeignKeyField(Customer, backref="orders")
    total_cents = peewee.IntegerField()


MODELS = [Customer, Order]
