"""A tiny ASGI app, no framework: POST /notes stores a note, GET /notes lists."""

import json

import peewee
import peewee_async

database = peewee_async.PostgresqlDatabase(None)


class Note(peewee_async.AioModel):
    text = peewee.CharField(unique=True)

    class Meta:
        database = database


async def app(scope, receive, send):
    assert scope["type"] == "http"
    if scope["method"] == "POST":
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            async with (
                database.aio_atomic()
            ):  # the handler opens a transaction of its own
                note = await Note.aio_create(text=json.loads(body)["text"])
            status, payload = 201, {"id": note.id}
        except peewee.IntegrityError:
            status, payload = 409, {"error": "duplicate"}
    else:
        status, payload = (
            200,
            [note.text for note in await Note.select().order_by(Note.id).aio_execute()],
        )
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(payload).encode()})
