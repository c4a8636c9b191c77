"""The guard in front of clean-up: whether a database is a test database, one whose tables a test may empty.

A test database is one of four kinds, each decided from the database object alone, before anything connects:

- PostgreSQL, named ``test_...`` (as the plugin names the databases it makes);
- PostgreSQL, on a throwaway server this process started (:class:`~peewee_async_testing.PostgresServer`), when
  nothing else in the connection settings (``hostaddr``, a service, a ``dsn``) could send it elsewhere;
- MySQL/MariaDB, named ``test_...`` or on a throwaway server this process started, with no model's table in
  another database of that server;
- SQLite in memory, or a file in a temporary folder (``/tmp``, ``/dev/shm``, ``tempfile.gettempdir()`` unless
  ``$TMPDIR`` is ``/``, the current folder, ``$HOME`` or one above them) or in a folder the plugin made for it,
  once every symbolic link and ``..`` is resolved, with no table in an attached database.

Whatever is not shown to be one of these is not one: when in doubt, refuse.
"""

from __future__ import annotations

import os
import tempfile
import urllib.parse
from collections.abc import Iterable

import peewee
import peewee_async
from peewee_async.databases import AioDatabase

from ._database import is_mysql, is_postgres
from .exceptions import ConfigurationError
from .server import is_throwaway

#: How the plugin names the folders it makes for SQLite test databases (``tempfile.mkdtemp(prefix=...)``).
SQLITE_FOLDER_PREFIX = "peewee-async-testing-sqlite-"
#: Connection settings that can send a PostgreSQL connection elsewhere than its host and port say (libpq reads
#: ``hostaddr`` from each of them), and the environment variables that set them.
_REDIRECTS = ("hostaddr", "service", "dsn")
_REDIRECT_ENV = ("PGHOSTADDR", "PGSERVICE")


def describe(database: AioDatabase) -> str:
    """The database in a few words, for an error: its name and where it is, never its password."""
    if is_postgres(database) or is_mysql(database):
        host, port = database.connect_params.get("host"), database.connect_params.get("port")
        port = port or (3306 if is_mysql(database) else 5432)
        return f"database {database.database!r} on {host or 'the default host'}:{port}"
    return f"the SQLite database {database.database!r}"


def refuse_unless_test_database(database: AioDatabase, models: Iterable[type[peewee.Model]], *, purpose: str) -> None:
    """Raise unless ``database`` is a test database whose tables of ``models`` a test may empty.

    :raises ConfigurationError: naming the database, why it is not a test database, and how to go on.
    """
    problem = why_not_a_test_database(database, models)
    if problem is not None:
        raise ConfigurationError(
            f"{purpose} refuses to empty the tables of {describe(database)}: it is not a test database ({problem}). "
            "Nothing was sent to it. Test databases are named test_..., or are on a throwaway server this process "
            "started, or are SQLite in memory or in a temporary folder. If this database is yours to empty, pass "
            "allow_any_database=True."
        )


def why_not_a_test_database(database: AioDatabase, models: Iterable[type[peewee.Model]] = ()) -> str | None:
    """Why ``database`` (with the tables of ``models``) is not a test database, or None when it is one."""
    if is_postgres(database):
        return _postgres_problem(database)
    if is_mysql(database):
        return _mysql_problem(database, models)
    return _sqlite_problem(database, models)


def _postgres_problem(database: AioDatabase) -> str | None:
    if isinstance(database, peewee_async.Psycopg3Database) and not _url_reads_the_same(database):
        return (
            "its psycopg 3 pool would connect elsewhere than its settings say (peewee-async pastes them into a "
            "URL unquoted, and they read differently there)"
        )
    if database.database.startswith("test_"):
        return None
    # The async pool connects with pool_params, the synchronous connection with connect_params: both must be safe.
    for params in (database.pool_params, database.connect_params):
        redirects = [key for key in _REDIRECTS if params.get(key)]
        redirects += [key for key in _REDIRECT_ENV if os.environ.get(key)]
        if redirects:
            return f"its name does not start with test_, and {', '.join(redirects)} may send it to another server"
        if not is_throwaway(params.get("host"), params.get("port")):
            return "its name does not start with test_, and its server is not a throwaway one this process started"
    return None


def _mysql_problem(database: AioDatabase, models: Iterable[type[peewee.Model]]) -> str | None:
    own = (None, database.database)
    others = sorted({str(model._meta.schema) for model in models if model._meta.schema not in own})
    if others:
        return f"the tables of {', '.join(others)} are in another database of the server"
    if database.database.startswith("test_"):
        return None
    for params in (database.pool_params, database.connect_params):
        if params.get("unix_socket") or not is_throwaway(params.get("host"), params.get("port")):
            return "its name does not start with test_, and its server is not a throwaway one this process started"
    return None


def _url_reads_the_same(database: AioDatabase) -> bool:
    """Whether the URL that peewee-async's psycopg 3 pool connects with (``PsycopgPoolBackend.create`` writes
    ``postgresql://user:password@host:port/name``, unquoted) names the host, port and database that the
    settings do: a name like ``test_x?dbname=shop`` connects to ``shop``."""
    from psycopg import Error
    from psycopg.conninfo import conninfo_to_dict

    params = {key: database.pool_params.get(key) for key in ("user", "password", "host", "port")}
    url = "postgresql://{user}:{password}@{host}:{port}/".format(**params) + database.database
    try:
        read = conninfo_to_dict(url)
    except Error:
        return False
    wanted = {"dbname": database.database, "host": str(params["host"]), "port": str(params["port"])}
    return read.keys() <= {"user", "password", *wanted} and all(read.get(key) == value for key, value in wanted.items())


def _sqlite_problem(database: AioDatabase, models: Iterable[type[peewee.Model]]) -> str | None:
    attached = sorted({str(model._meta.schema) for model in models if model._meta.schema not in (None, "main", "temp")})
    if attached:
        return f"the tables of schema {', '.join(attached)} are in an attached database, which may be any file"
    name = str(database.database)
    if name == ":memory:":
        return None
    paths = [name]
    if name.startswith("file:"):  # a URI with uri=True, and also without where SQLite is built so (as Debian's is)
        uri = urllib.parse.urlsplit(name)
        query = urllib.parse.parse_qs(uri.query)
        memory = uri.path == ":memory:" or query.get("mode") == ["memory"] or query.get("vfs") == ["memdb"]
        paths = [] if memory else [urllib.parse.unquote(uri.path)]
        if not (database.connect_params.get("uri") and database.pool_params.get("uri")):
            paths.append(name)  # a file of that very name, where SQLite is not built to read URIs
    for path in paths:
        real = os.path.realpath(path)
        if not _made_here(real) and not any(
            os.path.commonpath([real, folder]) == folder != real for folder in _temporary_folders()
        ):
            return f"{real} is not in a temporary folder ({', '.join(_temporary_folders())})"
    return None


def _temporary_folders() -> list[str]:
    """The temporary folders, every link resolved: ``/tmp``, ``/dev/shm``, and ``tempfile.gettempdir()``
    (``$TMPDIR``) unless it is ``/``, the current folder or one above it, or ``$HOME`` or one above it (where a
    real database may be). Files directly in a folder this library made (``peewee-async-testing-sqlite-*``) are
    accepted wherever it is."""
    folders = {os.path.realpath(folder) for folder in ("/tmp", "/dev/shm") if os.path.isdir(folder)}
    chosen = os.path.realpath(tempfile.gettempdir())
    homes = [os.path.realpath(place) for place in (os.getcwd(), os.path.expanduser("~"))]
    if not any(os.path.commonpath([chosen, place]) == chosen for place in homes):
        folders.add(chosen)
    return sorted(folder for folder in folders if folder != os.path.realpath("/"))


def _made_here(real: str) -> bool:
    """Whether the file ``real`` is directly in a folder made for SQLite test databases (see :mod:`.testdb`)."""
    return os.path.basename(os.path.dirname(real)).startswith(SQLITE_FOLDER_PREFIX)
