import peewee
import peewee_async

# Your app's database, as production configures it: the tests never connect to it.
database = peewee_async.PostgresqlDatabase("app", host="db.internal")


class User(peewee_async.AioModel):
    name = peewee.CharField(unique=True)

    class Meta:
        database = database
