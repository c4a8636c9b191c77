from library.models import Genre


def pytest_peewee_async_seed_database(database):
    """The genres every test expects: written once, before any test."""
    Genre.insert_many([{"name": "Poetry"}, {"name": "Crime"}]).execute()
