import peewee_async

database = peewee_async.PostgresqlDatabase("library")
