"""The errors this library raises: one base class and a subclass for each thing that can go wrong."""

from __future__ import annotations


class PeeweeAsyncTestingError(Exception):
    """Base class of every error this library raises."""


class ConfigurationError(PeeweeAsyncTestingError):
    """The library was handed something it cannot work with (a database object, an option)."""


class DatabaseArgumentError(ConfigurationError, TypeError):
    """What was handed over as the database is not one this library works with: None, a module, a class, a
    plain peewee database, an empty proxy, or a peewee-async database of another backend than PostgreSQL and
    SQLite. A :class:`TypeError` too, as Python raises for an argument of the wrong kind."""


class TransactionError(PeeweeAsyncTestingError):
    """A test transaction could not be opened or rolled back."""


class ServerError(PeeweeAsyncTestingError):
    """The throwaway PostgreSQL server could not be found, started or stopped."""


class DatabaseAccessError(PeeweeAsyncTestingError):
    """Under the pytest plugin: the configured database was asked to connect where it may not (the real database,
    or from a test that is not isolated)."""
