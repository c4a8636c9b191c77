import unittest

import peewee
import peewee_async

from peewee_async_testing import AioDatabaseTestCase, use_test_database

# Your real database: the tests never connect to it.
database = peewee_async.PostgresqlDatabase("library")


class Author(peewee_async.AioModel):
    name = peewee.CharField(unique=True)

    class Meta:
        database = database


class Book(peewee_async.AioModel):
    title = peewee.CharField()
    author = peewee.ForeignKeyField(Author, backref="books")

    class Meta:
        database = database


def setUpModule():
    # test_library and its tables, on a throwaway server (or the one
    # $PEEWEE_ASYNC_TESTING_DSN names): all gone after the module.
    use_test_database(database)


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
    program = unittest.main(exit=False)
    assert program.result.wasSuccessful()
    assert program.result.testsRun == 2
