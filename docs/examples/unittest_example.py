import unittest

import peewee
import peewee_async

from peewee_async_testing import AioDatabaseTestCase, PostgresServer

database = peewee_async.PostgresqlDatabase(None)


class Author(peewee_async.AioModel):
    name = peewee.CharField(unique=True)

    class Meta:
        database = database


class Book(peewee_async.AioModel):
    title = peewee.CharField()
    author = peewee.ForeignKeyField(Author, backref="books")

    class Meta:
        database = database


class TestLibrary(AioDatabaseTestCase):
    database = database
    allow_transactions = True  # the app's aio_atomic() blocks run on savepoints

    @classmethod
    async def asyncSetUpTestData(cls):
        # Runs once for the class, in a transaction that its tests share
        # through savepoints.
        cls.ada = await Author.aio_create(name="ada")

    async def test_add_a_book(self):
        await Book.aio_create(title="Notes", author=self.ada)
        self.assertEqual(await Book.select().aio_count(), 1)

    async def test_each_test_starts_from_the_class_data(self):
        self.assertEqual(await Book.select().aio_count(), 0)
        self.assertEqual(await Author.select().aio_count(), 1)


if __name__ == "__main__":
    with PostgresServer() as server:
        database.init(**server.connect_params("postgres"))
        with database.allow_sync():
            database.create_tables([Author, Book])
        try:
            program = unittest.main(exit=False)
            assert program.result.wasSuccessful()
            assert program.result.testsRun == 2
        finally:
            with database.allow_sync():
                database.drop_tables([Author, Book])
