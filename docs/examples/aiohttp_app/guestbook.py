"""An aiohttp app: POST /entries signs the guest book, GET /entries reads it."""

import peewee
import peewee_async
from aiohttp import web

database = peewee_async.PostgresqlDatabase("guestbook", host="db.example.com")


class Entry(peewee_async.AioModel):
    name = peewee.CharField()

    class Meta:
        database = database


async def sign(request):
    entry = await Entry.aio_create(name=(await request.json())["name"])
    return web.json_response({"id": entry.id}, status=201)


async def entries(request):
    rows = await Entry.select().order_by(Entry.id).aio_execute()
    return web.json_response([entry.name for entry in rows])


def make_app():
    app = web.Application()
    app.router.add_post("/entries", sign)
    app.router.add_get("/entries", entries)
    return app
