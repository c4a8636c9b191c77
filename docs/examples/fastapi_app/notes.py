"""A FastAPI app: POST /notes stores a note, GET /notes lists them."""

import peewee
import peewee_async
from fastapi import FastAPI
from pydantic import BaseModel

database = peewee_async.PostgresqlDatabase("notes", host="db.example.com")


class Note(peewee_async.AioModel):
    text = peewee.CharField()

    class Meta:
        database = database


class NewNote(BaseModel):
    text: str


app = FastAPI()


@app.post("/notes", status_code=201)
async def add_note(note: NewNote):
    row = await Note.aio_create(text=note.text)
    return {"id": row.id}


@app.get("/notes")
async def list_notes():
    return [note.text for note in await Note.select().order_by(Note.id).aio_execute()]
