"""The shop's database object. It is initialised at start-up (and by the tests) with real settings."""

import peewee_async

database = peewee_async.PostgresqlDatabase(None)
