"""The errors this library raises: one base class and a subclass for each thing that can go wrong."""

from __future__ import annotations

import peewee


class PeeweeAsyncTestingError(Exception):
    """Base class of every error this library raises."""


class ConfigurationError(PeeweeAsyncTestingError):
    """The library was handed something it cannot work with (a database object, an option)."""


class DatabaseArgumentError(ConfigurationError, TypeError):
    """What was handed over as the database is not one this library works with: None, a module, a class, a
    plain peewee database, an empty proxy, or a peewee-async database of another backend than PostgreSQL,
    MySQL and SQLite. A :class:`TypeError` too, as Python raises for an argument of the wrong kind."""


class MigrationError(PeeweeAsyncTestingError):
    """A migration, or its rollback, failed: the message names it and gives the error (and what hid it)."""


class TransactionError(PeeweeAsyncTestingError):
    """A test transaction could not be opened or rolled back."""


class ServerError(PeeweeAsyncTestingError):
    """The throwaway PostgreSQL or MariaDB server could not be found, started or stopped."""


class DatabaseAccessError(PeeweeAsyncTestingError):
    """Under the pytest plugin: the configured database was asked to connect where it may not (the real database,
    or from a test that is not isolated)."""


class TransactionControlError(TransactionError, ValueError):
    """Inside a test transaction, the code under test sent SQL that would end it (``COMMIT``, ``BEGIN``...) where
    it may not: without ``allow_transactions``, or a two-phase commit. A :class:`ValueError` too, as the refusal
    of ``aio_atomic()`` is."""


class AbortedTransactionError(TransactionError, peewee.InternalError):
    """PostgreSQL aborted the transaction after an earlier error, and refuses every statement until it is rolled
    back. A ``peewee.InternalError`` too, as production raises for the same statement."""


class TurnTimeoutError(TransactionError, peewee.OperationalError):
    """A statement waited too long for another task's transaction block on the test's one connection. A
    ``peewee.OperationalError`` too, as production raises for a lock it waited too long for."""
