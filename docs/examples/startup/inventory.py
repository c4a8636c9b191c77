"""A FastAPI app whose database is set up at start-up, from $DATABASE_URL."""

import os
from contextlib import asynccontextmanager

import peewee
import peewee_async
from fastapi import FastAPI
from playhouse.db_url import parse

database = peewee_async.PostgresqlDatabase(None)  # init()-ed at start-up


class Product(peewee_async.AioModel):
    name = peewee.CharField(unique=True)

    class Meta:
        database = database


@asynccontextmanager
async def lifespan(app):
    # Only if nobody did it first: under the tests, the plugin has pointed the
    # database at the test database already.
    ours = database.deferred
    if ours:
        database.init(**parse(os.environ["DATABASE_URL"]))
    app.state.shop = os.environ.get("SHOP_NAME", "Our shop")
    yield
    if ours:
        await database.aio_close()


app = FastAPI(lifespan=lifespan)


@app.post("/products", status_code=201)
async def add_product(name: str):
    product = await Product.aio_create(name=name)
    return {"id": product.id}


@app.get("/")
async def home():
    return {"shop": app.state.shop, "products": await Product.select().aio_count()}
