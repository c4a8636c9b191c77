"""The models of the project's own tests, bound through a proxy to whichever database a test runs on."""

from __future__ import annotations

import peewee
from peewee_async import AioModel

database_proxy = peewee.DatabaseProxy()


class BaseModel(AioModel):  # type: ignore[misc]  # peewee-async ships no types: AioModel is Any
    class Meta:
        database = database_proxy


class Author(BaseModel):
    name = peewee.CharField(unique=True)


class Book(BaseModel):
    title = peewee.CharField()
    author = peewee.ForeignKeyField(Author, backref="books")


class Review(BaseModel):
    book = peewee.ForeignKeyField(Book, backref="reviews")
    stars = peewee.IntegerField()


class Ghost(BaseModel):
    """Bound to the database but never created: clearing must skip its missing table."""

    note = peewee.TextField()


MODELS = [Author, Book, Review]
