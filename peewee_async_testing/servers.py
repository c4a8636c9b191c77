"""Which server the plugin makes the test database on: the kind that fits the configured database, and only that one.

A PostgreSQL database gets a :class:`~peewee_async_testing.PostgresServer`, a MySQL one a
:class:`~peewee_async_testing.MariaDBServer`, an SQLite one none. Each is the server a DSN names, else a
throwaway one: ``--peewee-dsn``, which must be of the database's kind; else, for MySQL,
``$PEEWEE_ASYNC_TESTING_MYSQL_DSN`` or a ``mysql://`` ``$PEEWEE_ASYNC_TESTING_DSN`` (a PostgreSQL one there is
for the PostgreSQL projects of the same environment); else, for PostgreSQL, ``$PEEWEE_ASYNC_TESTING_DSN``.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any, Literal

from .dsn import DSN, hide, mask
from .exceptions import ConfigurationError

if TYPE_CHECKING:
    from peewee_async.databases import AioDatabase

Kind = Literal["postgres", "mysql"]
DSN_ENV = "PEEWEE_ASYNC_TESTING_DSN"  # (server.DSN_ENV and mariadb.MYSQL_DSN_ENV, without importing them)
MYSQL_DSN_ENV = "PEEWEE_ASYNC_TESTING_MYSQL_DSN"
#: The environment variables that name a server of each kind, first first.
ENVIRONMENT: dict[Kind, tuple[str, ...]] = {"postgres": (DSN_ENV,), "mysql": (MYSQL_DSN_ENV, DSN_ENV)}
_NAMES = {"postgres": "PostgreSQL", "mysql": "MySQL"}
_EXAMPLES = {"postgres": "postgresql://user:password@host:port/dbname", "mysql": "mysql://user:password@host:port/"}


def kind_of(database: AioDatabase) -> Kind | None:
    """The kind of server ``database`` needs; None for SQLite, which needs none."""
    import peewee

    if isinstance(database, peewee.MySQLDatabase):
        return "mysql"
    return "postgres" if isinstance(database, peewee.PostgresqlDatabase) else None


def dsn_kind(dsn: str) -> Kind:
    """The kind of server ``dsn`` names: ``mysql://`` and ``mariadb://`` URLs MySQL, anything else PostgreSQL."""
    return "mysql" if re.match(r"\s*(mysql|mariadb)://", dsn, re.IGNORECASE) else "postgres"


def from_environment(kind: Kind) -> tuple[DSN, str] | None:
    """The DSN of a server of ``kind`` that the environment names, and its variable; None if none does. (For
    MySQL, a PostgreSQL ``$PEEWEE_ASYNC_TESTING_DSN`` is passed over; for PostgreSQL, a DSN there is its own.)"""
    for name in ENVIRONMENT[kind]:
        dsn = hide(os.environ.get(name))
        if dsn and (kind == "postgres" or name == MYSQL_DSN_ENV or dsn_kind(dsn) == "mysql"):
            return dsn, f"${name}"
    return None


def check(kind: Kind, dsn: str, origin: str, database: str | None) -> None:
    """Raise unless ``dsn`` (from ``origin``) names a server of ``kind``, the kind ``database`` (named so) needs.

    :raises ConfigurationError: naming both kinds and what to give instead.
    """
    named = dsn_kind(dsn)
    if named == kind:
        return
    raise ConfigurationError(
        f"{database or 'The configured database'} is a {_NAMES[kind]} database, but {origin} ({mask(dsn)}) names "
        f"a {_NAMES[named]} server: give a {_EXAMPLES[kind]} URL, or leave it out for a throwaway "
        f"{_NAMES[kind]} server."
    )


def given_server(kind: Kind, dsn: str, origin: str, database: Any, spec: str | None = None) -> Any:
    """The server that ``dsn`` (from ``origin``) describes, for ``database`` (named ``spec`` in errors), once
    checked: of ``kind``, readable by its driver, and not administered from ``database``'s own database. Not
    started.

    :raises ConfigurationError: saying which of these it is not.
    """
    check(kind, dsn, origin, spec)
    server = make_server(kind, dsn=dsn, origin=origin)
    _check_not_the_app(server, database, origin)
    return server


def _check_not_the_app(server: Any, database: Any, origin: str) -> None:
    """Raise if ``server``, described by a DSN from ``origin``, would be administered from the app's own database:
    the test databases are made from the DSN's database, so that one is connected to.

    :raises ConfigurationError: naming the database and what to name instead.
    """
    name = getattr(database, "database", None)
    if name and server.database == name:
        maintenance = "postgres" if kind_of(database) == "postgres" else "none, or mysql"
        raise ConfigurationError(
            f"{origin} names the database {name!r}, which your database object is configured with: the test "
            f"databases are made from the database a DSN names, so {name!r} would be connected to. Name a "
            f"maintenance database there instead ({maintenance})."
        )


def make_server(kind: Kind, *, dsn: str | None = None, origin: str | None = None, **options: Any) -> Any:
    """A server of ``kind``: the one ``dsn`` names, else a throwaway one (``options``: a PostgreSQL one's locale
    and settings, a MariaDB one's settings). Not started."""
    if kind == "mysql":
        from .mariadb import MariaDBServer

        return MariaDBServer(dsn=dsn, origin=origin, settings=None if dsn else options.get("settings"))
    from .server import PostgresServer

    return PostgresServer(dsn=dsn, origin=origin, **({} if dsn else options))
