"""The session's test database: made on the server, the app's database object pointed at it, dropped at the end.

PostgreSQL: ``test_<name>`` (plus a suffix, for runs that share a server) is created and its tables
made once; pytest-xdist workers each get a clone, ``test_<name>_gw0`` ..., made with
``CREATE DATABASE ... TEMPLATE`` so the schema is built once. SQLite: a file in a temporary folder.
Set-up is synchronous (psycopg2 and peewee's sync API): no event loop is involved.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import peewee
from peewee_async.databases import AioDatabase
from peewee_async.pool import PsycopgPoolBackend
from peewee_async.utils import sort_models

from ._compat import create_table_sql
from ._database import is_postgres, sync_queries
from .exceptions import ConfigurationError
from .patches import snapshot
from .server import PostgresServer

_COMMENT = "peewee-async-testing schema {}"
_MAX_NAME = 63


def schema_fingerprint(models: Sequence[type[peewee.Model]]) -> str:
    """A hash of the SQL that creates the tables and indexes of ``models``: it changes when the schema does."""
    statements = [sql for model in sort_models(models) for sql in create_table_sql(model)]
    return hashlib.sha256("\n".join(statements).encode()).hexdigest()[:16]


def database_name(original: str | None, *, module: str = "", suffix: str = "", worker: str | None = None) -> str:
    """``test_<name>[_<suffix>][_<worker>]`` in lower-case letters, digits and ``_``, at most 63 bytes.

    ``<name>`` is the app's database name (an SQLite path: its file's stem); for a database created
    uninitialised, with no name, the top package of ``module``, the module holding it (``myapp.db``: ``myapp``).
    """
    base = Path(original).stem if original else module.partition(".")[0] or "peewee"
    parts = ["test", base, suffix, worker or ""]
    name = "_".join(re.sub(r"[^a-z0-9_]+", "_", part.lower()) for part in parts if part)
    if len(name) > _MAX_NAME:
        name = name[: _MAX_NAME - 9] + "_" + hashlib.sha256(name.encode()).hexdigest()[:8]
    return name


def repoint(database: AioDatabase, name: str, **overrides: Any) -> None:
    """Point ``database`` at database ``name``, with ``overrides`` over its connection settings, keeping
    everything else as it is: ``init()`` would also reset what it takes as arguments (SQLite's ``timeout``,
    PostgreSQL's ``isolation_level`` and ``encoding``, the psycopg adapter) to their defaults."""
    if not database.is_closed():
        database.close()
    old = database.connect_params
    connect = {**old, **overrides}
    pool_only = {key: value for key, value in database.pool_params.items() if key not in old}
    database.database, database.deferred = name, not name
    database.connect_params, database.pool_params = connect, {**pool_only, **connect}
    database.pool_backend = database.pool_backend_cls(database=name, **database.pool_params)


def reinit(database: AioDatabase, name: str, **overrides: Any) -> Callable[[], None]:
    """Point ``database`` at database ``name`` (see :func:`repoint`); return the undo, which puts every
    attribute back as the identical object and removes what the session added (such as
    ``server_version``): a database created uninitialised (``database=None``) is uninitialised again."""
    undo = snapshot(database)  # every attribute, the connection settings' dicts included
    repoint(database, name, **overrides)

    def restore() -> None:
        database.close()
        undo()

    return restore


def create_tables(database: AioDatabase, models: Sequence[type[peewee.Model]]) -> None:
    with sync_queries(database):
        database.create_tables(list(models), safe=False)


class TestDatabase:
    """The test database of one pytest session (or xdist worker) for one peewee-async database object.

    :param database: the app's database object; pointed at the test database by :meth:`setup`.
    :param models: the models whose tables the test database gets.
    :param server: where to make it (PostgreSQL only).
    :param module: the module holding the database object: names the test database of an uninitialised one.
    :param suffix: added to every name, so that runs sharing a server do not collide.
    :param worker: the pytest-xdist worker id, or ``None``.
    :param reuse: keep the database at the end, and reuse it next time when its schema is unchanged.
    :param create: make it afresh even when ``reuse`` could keep it.
    :param drop_stale: first drop this project's test databases that no live session holds.
    """

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(
        self,
        database: AioDatabase,
        models: Sequence[type[peewee.Model]],
        *,
        server: PostgresServer | None = None,
        module: str = "",
        suffix: str = "",
        worker: str | None = None,
        reuse: bool = False,
        create: bool = False,
        drop_stale: bool = False,
    ) -> None:
        self.database = database
        self.models = list(models)
        self.server = server
        self.reuse, self.create, self.drop_stale = reuse and not create, create, drop_stale
        self.family = database_name(database.database, module=module)
        self.template = database_name(database.database, module=module, suffix=suffix)
        self.name = database_name(database.database, module=module, suffix=suffix, worker=worker)
        self.worker = worker
        #: Whether :meth:`setup` found the database ready and kept it (``--peewee-reuse-db``).
        self.reused = False
        self.dropped_stale: list[str] = []
        self._restore: Callable[[], None] | None = None
        self._holder: Any = None
        self._folder: str | None = None

    def setup(self) -> None:
        """Make the test database (or reuse it), point the database object at it, create the tables."""
        if not is_postgres(self.database):
            self._folder = tempfile.mkdtemp(prefix="peewee-async-testing-sqlite-")
            self.name = str(Path(self._folder, f"{self.name}.db"))
            self._restore = reinit(self.database, self.name)
            create_tables(self.database, self.models)
            return
        assert self.server is not None
        self._restore = reinit(self.database, self.name, **self._server_params())
        if not self.server.attached:
            # A server of this session alone, removed at its end: no other session to guard against,
            # nothing to reuse or drop. Just the database and its tables.
            with self._admin() as admin:
                self._create(admin, self.name, options=_quick_copy(self.server))
            return
        fingerprint = schema_fingerprint(self.models)
        with self._admin() as admin, self._locked(admin):
            if self.drop_stale:
                self.dropped_stale = self._drop_stale(admin)
            if self.worker is None:
                self.reused = self._ensure(admin, self.name, fingerprint)
            else:
                self._ensure(admin, self.template, fingerprint)
                self.reused = self._ensure(admin, self.name, fingerprint, template=self.template)
        self._use(self.name)
        self._holder = self.server.connect(self.name)

    def teardown(self) -> None:
        """Drop the test database (unless reused, or on a throwaway server, which takes it along when it
        stops) and give the database object its own settings back."""
        restore, self._restore = self._restore, None
        if restore is not None:
            restore()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            return
        if self._holder is not None:
            self._holder.close()
            self._holder = None
        if self.reuse or (self.server is not None and not self.server.attached):
            return  # kept; or removed with the whole throwaway cluster when it stops, quicker than a DROP
        with self._admin() as admin, self._locked(admin):
            _execute(admin, f"DROP DATABASE IF EXISTS {_quote(self.name)} WITH (FORCE)")
            if self.worker is not None and not self._siblings(admin):
                _execute(admin, f"DROP DATABASE IF EXISTS {_quote(self.template)} WITH (FORCE)")

    # -- PostgreSQL ---------------------------------------------------------------------------------------------

    def _use(self, name: str) -> None:
        """Point the (already re-initialised) database object at database ``name`` of the server."""
        repoint(self.database, name)

    def _server_params(self) -> dict[str, Any]:
        assert self.server is not None
        psycopg = issubclass(self.database.pool_backend_cls, PsycopgPoolBackend)
        params = self.server.connect_params("", driver="psycopg" if psycopg else "aiopg")
        return {key: value for key, value in params.items() if key != "database"}

    @contextmanager
    def _admin(self) -> Iterator[Any]:
        assert self.server is not None
        connection = self.server.connect(self.server.database)
        try:
            yield connection
        finally:
            connection.close()

    @contextmanager
    def _locked(self, admin: Any) -> Iterator[None]:
        """Serialise set-up and clean-up of this project's databases across sessions and workers."""
        key = f"peewee-async-testing {self.family}"
        _execute(admin, "SELECT pg_advisory_lock(hashtext(%s))", (key,))
        try:
            yield
        finally:
            _execute(admin, "SELECT pg_advisory_unlock(hashtext(%s))", (key,))

    def _ensure(self, admin: Any, name: str, fingerprint: str, *, template: str | None = None) -> bool:
        """Make database ``name`` (a copy of ``template``, or with the tables made here), unless reuse may keep
        it; return whether it was kept."""
        if self.reuse and _comment(admin, name) == _COMMENT.format(fingerprint):
            return True
        self._drop_unless_held(admin, name)
        self._create(admin, name, template=template)
        _execute(admin, f"COMMENT ON DATABASE {_quote(name)} IS %s", (_COMMENT.format(fingerprint),))
        return False

    def _create(self, admin: Any, name: str, *, template: str | None = None, options: str = "") -> None:
        """``CREATE DATABASE name``, a copy of ``template`` (which has the tables), else with the tables made here."""
        copy = f" TEMPLATE {_quote(template)}" if template else ""
        _execute(admin, f"CREATE DATABASE {_quote(name)}{copy}{options}")
        if template is None:
            if self.server is not None and self.server.attached:
                # Its first connection ours, so that a refusal (pg_hba.conf) is said with the DSN masked: the
                # traceback of peewee's own connect would show psycopg2's, which holds the password.
                self.server.connect(name).close()
            self._use(name)
            create_tables(self.database, self.models)

    def _drop_unless_held(self, admin: Any, name: str) -> None:
        pids = _fetch(admin, "SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,))
        if pids:
            raise ConfigurationError(
                f"The test database {name!r} is in use by another session (server process {pids[0][0]}). "
                "Runs that share a server need distinct names: give each one --peewee-db-suffix "
                "(or PEEWEE_ASYNC_TESTING_DB_SUFFIX)."
            )
        _execute(admin, f"DROP DATABASE IF EXISTS {_quote(name)}")

    def _drop_stale(self, admin: Any) -> list[str]:
        """Drop this project's test databases that no session is connected to (left by crashed runs)."""
        stale = _fetch(
            admin,
            "SELECT datname FROM pg_database AS d WHERE (datname = %s OR datname LIKE %s) "
            "AND NOT EXISTS (SELECT 1 FROM pg_stat_activity AS a WHERE a.datname = d.datname) ORDER BY datname",
            (self.family, _like_prefix(self.family + "_")),
        )
        names = [name for (name,) in stale if name not in (self.name, self.template)]  # those are remade anyway
        for name in names:
            _execute(admin, f"DROP DATABASE IF EXISTS {_quote(name)}")
        return names

    def _siblings(self, admin: Any) -> bool:
        """Whether other workers' clones of the template still exist."""
        return bool(
            _fetch(admin, "SELECT 1 FROM pg_database WHERE datname LIKE %s", (_like_prefix(self.template + "_gw"),))
        )


def _quick_copy(server: PostgresServer) -> str:
    """The quicker way to copy the template on a server without durability (fsync off), from PostgreSQL 15:
    copying its files and checkpointing beats writing every page to the WAL."""
    major = (server.version or "0").split(".")[0]
    return " STRATEGY FILE_COPY" if major.isdigit() and int(major) >= 15 else ""


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _like_prefix(prefix: str) -> str:
    return re.sub(r"([\\%_])", r"\\\1", prefix) + "%"


def _execute(connection: Any, sql: str, params: Sequence[Any] = ()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _fetch(connection: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def _comment(admin: Any, name: str) -> str | None:
    rows = _fetch(admin, "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", (name,))
    return rows[0][0] if rows else None
