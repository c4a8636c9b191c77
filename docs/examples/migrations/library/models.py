import peewee
import peewee_async

from library.db import database


class CaseInsensitiveText(peewee.TextField):
    field_type = "CITEXT"  # from the citext extension


class Genre(peewee_async.AioModel):
    name = CaseInsensitiveText(unique=True)
    books = peewee.IntegerField(default=0)  # kept up to date by a trigger

    class Meta:
        database = database


class Book(peewee_async.AioModel):
    title = peewee.CharField(max_length=200)
    genre = peewee.ForeignKeyField(Genre, on_delete="CASCADE")

    class Meta:
        database = database
