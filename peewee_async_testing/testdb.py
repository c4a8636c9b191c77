"""The session's test database: made on the server, the app's database object pointed at it, dropped at the end.

PostgreSQL: ``test_<name>`` (plus a suffix, for runs that share a server) is created and its tables
made once; pytest-xdist workers each get a clone, ``test_<name>_gw0`` ..., made with
``CREATE DATABASE ... TEMPLATE`` so the schema is built once. MySQL and MariaDB: the same, on their own
terms (:mod:`~peewee_async_testing.mysqldb`). SQLite: a file in a temporary folder.
Set-up is synchronous (psycopg2, PyMySQL and peewee's sync API): no event loop is involved.

On a server it shares with others (``--peewee-dsn``), a session touches only what it owns: every database
it makes carries this project's mark (see :mod:`~peewee_async_testing.ownership`), and one without it is
never dropped or used. Sessions of one project make, reuse and drop their databases under one lock, and a
session holds its database with a connection from the moment it has it; so a database of the project that
no connection holds, and that no held database was cloned from, is one a crashed run left (stale), unless a
run kept it on purpose (``--peewee-reuse-db``, said in its mark). A session never makes afresh a template
another run's held clones came from, and the last worker of a run drops the template only if this run made
it. What is not the session's own is dropped without ``FORCE``: whoever connects first keeps it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import peewee
import psycopg2
from peewee_async.databases import AioDatabase
from peewee_async.pool import PsycopgPoolBackend

from . import seeds
from ._database import is_sqlite
from .building import SchemaBuild
from .exceptions import ConfigurationError
from .guard import SQLITE_FOLDER_PREFIX
from .ownership import Found, Project, database_name, execute, fetch, find, quote, survey
from .patches import snapshot
from .server import PostgresServer

_HOLDER = "peewee-async-testing holder"


class Server(Protocol):
    """What a test database needs of its server: a :class:`PostgresServer`, or a
    :class:`~peewee_async_testing.MariaDBServer` for a MySQL database."""

    host: str
    port: int
    user: str

    @property
    def attached(self) -> bool: ...

    def connect(self, database: str) -> Any: ...


#: The models whose tables the session's test database was built for (the plugin's), while it is set up.
CREATED_MODELS: list[type[peewee.Model]] = []
SUFFIX_HINT = "--peewee-db-suffix TEXT (or PEEWEE_ASYNC_TESTING_DB_SUFFIX)"


#: The libpq settings that say where, and as whom, to connect: pointed at a server of the session's, the object
#: keeps none of its own (a ``hostaddr`` left over would send it to the real server's address).
WHERE = frozenset(
    {"host", "hostaddr", "port", "user", "password", "passfile", "service", "servicefile", "dsn", "dbname"}
    | {"database", "db", "passwd", "unix_socket", "read_default_file", "read_default_group"}  # PyMySQL's
)


def server_params(server: PostgresServer, database: AioDatabase) -> dict[str, Any]:
    """Where, and as whom, ``database`` (of its driver) connects to ``server``: its connection settings but the
    database name."""
    psycopg = issubclass(database.pool_backend_cls, PsycopgPoolBackend)
    params = server.connect_params("", driver="psycopg" if psycopg else "aiopg")
    return {key: value for key, value in params.items() if key != "database"}


def repoint(database: AioDatabase, name: str, **server: Any) -> None:
    """Point ``database`` at database ``name``, of the ``server`` (its host, port, user, password and other
    settings) when given, keeping everything else as it is: ``init()`` would also reset what it takes as
    arguments (SQLite's ``timeout``, PostgreSQL's ``isolation_level`` and ``encoding``, the psycopg adapter)
    to their defaults."""
    if not database.is_closed():
        database.close()
    old = database.connect_params
    own = {key: value for key, value in old.items() if key not in WHERE} if server else old
    connect = {**own, **server}
    pool_only = {key: value for key, value in database.pool_params.items() if key not in old}
    database.database, database.deferred = name, not name
    database.connect_params, database.pool_params = connect, {**pool_only, **connect}
    database.pool_backend = database.pool_backend_cls(database=name, **database.pool_params)


def reinit(database: AioDatabase, name: str, **server: Any) -> Callable[[], None]:
    """Point ``database`` at database ``name`` (see :func:`repoint`); return the undo, which puts every
    attribute back as the identical object and removes what the session added (such as
    ``server_version``): a database created uninitialised (``database=None``) is uninitialised again."""
    undo = snapshot(database)  # every attribute, the connection settings' dicts included
    repoint(database, name, **server)

    def restore() -> None:
        database.close()
        undo()

    return restore


class TestDatabase:
    """The test database of one pytest session (or xdist worker) for one peewee-async database object.

    :param database: the app's database object; pointed at the test database by :meth:`setup`.
    :param models: the models whose tables the test database gets.
    :param build: how its schema is built (by default: the tables of ``models``).
    :param server: where to make it (none for SQLite).
    :param module: the module holding the database object: names the test database of an uninitialised one,
        and, with the database's name, the project in the mark of every database made for it.
    :param suffix: added to every name, so that runs sharing a server do not collide.
    :param worker: the pytest-xdist worker id, or ``None``.
    :param reuse: keep the database at the end, and reuse it next time when its schema is unchanged.
    :param create: make it afresh even when ``reuse`` could keep it (and keep it all the same).
    :param drop_stale: first drop this project's test databases that crashed runs left.
    :param run: what the databases of one run (all its xdist workers) share in their mark; by default
        pytest-xdist's ``PYTEST_XDIST_TESTRUNUID`` for a worker, else a new one.
    """

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(
        self,
        database: AioDatabase,
        models: Sequence[type[peewee.Model]],
        *,
        server: Server | None = None,
        module: str = "",
        suffix: str = "",
        worker: str | None = None,
        reuse: bool = False,
        create: bool = False,
        drop_stale: bool = False,
        run: str | None = None,
        build: SchemaBuild | None = None,
    ) -> None:
        self.database = database
        self.models = list(models)
        self.build = build or SchemaBuild(self.models)
        self.server = server
        self.reuse, self.create, self.drop_stale = reuse, create, drop_stale
        sqlite = is_sqlite(database)
        self.family = database_name(database.database, module=module, sqlite=sqlite)
        self.template = database_name(database.database, module=module, suffix=suffix, sqlite=sqlite)
        self.name = database_name(database.database, module=module, suffix=suffix, worker=worker, sqlite=sqlite)
        self.worker = worker
        self.project = Project(module, None if sqlite else database.database)
        self.run = run or (worker and os.environ.get("PYTEST_XDIST_TESTRUNUID")) or uuid.uuid4().hex
        #: Whether :meth:`setup` found the database ready and kept it (``--peewee-reuse-db``).
        self.reused = False
        #: The stale databases dropped first (``--peewee-drop-stale``).
        self.dropped_stale: list[str] = []
        #: The databases it met where stale ones are, and left alone: ``"name (why)"``.
        self.kept: list[str] = []
        self._restore: Callable[[], None] | None = None
        self._holder: Any = None
        self._folder: str | None = None
        self._made: dict[str, int] = {}  # the databases this session created: name -> oid

    def setup(self) -> None:
        """Make the test database (or reuse it), point the database object at it, create the tables.

        If it fails half-way, it leaves nothing behind: the databases it made are dropped, the
        database object has its own settings back.
        """
        try:
            self._setup()
        except BaseException:
            self._close_holder()
            self._restore_object()
            raise
        CREATED_MODELS[:] = self.models

    def teardown(self) -> None:
        """Drop the test database (unless reused, or on a throwaway server, which takes it along when it
        stops) and give the database object its own settings back."""
        CREATED_MODELS.clear()
        seeds.forget(self.database)
        self._restore_object()
        if self.server is None:
            return
        if self.reuse or not self.server.attached:
            self._close_holder()
            return  # kept; or removed with the whole throwaway cluster when it stops, quicker than a DROP
        with self._admin() as admin, self._locked(admin):
            self._close_holder()
            self._drop_made(admin, self.name)
            if self.worker is not None:
                self._drop_template_unless_held(admin)

    def _setup(self) -> None:
        if is_sqlite(self.database):
            self._folder = tempfile.mkdtemp(prefix=SQLITE_FOLDER_PREFIX)
            self.name = str(Path(self._folder, f"{self.name}.db"))
            self._restore = reinit(self.database, self.name)
            self.build(self.database)
            return
        assert self.server is not None
        self._restore = reinit(self.database, self.name, **self._server_params())
        if not self.server.attached:
            # A server of this session alone, removed at its end: no other session to guard against,
            # nothing to reuse or drop. Just the database and its tables.
            with self._admin() as admin, self._undone_on_error(admin):
                self._create(admin, self.name, mark=False)
            self._load_seeds()
            return
        fingerprint = self.build.fingerprint()
        with self._admin() as admin, self._locked(admin), self._undone_on_error(admin):
            if self.drop_stale:
                self._drop_stale(admin)
            keep = self.reuse and not self.create
            if self.worker is None:
                self.reused = self._ensure(admin, self.name, fingerprint, keep=keep)
            else:
                shared = keep or self._held_clones(admin, self.template)  # a live sibling made it (see _ensure)
                self._ensure(admin, self.template, fingerprint, keep=bool(shared))
                self.reused = self._ensure(admin, self.name, fingerprint, keep=keep, template=self.template)
            self._use(self.name)
            self._hold(self.name)  # before the lock is released: no session may take it for stale
        self._load_seeds()

    def _load_seeds(self) -> None:
        """What the seed hook wrote, to put back after each clear: read from the database (a copy of the template
        or a kept one has it too)."""
        if self.build.seed is not None:
            seeds.load(self.database)

    # -- PostgreSQL (a subclass does the same on another server: mysqldb.MySQLTestDatabase) ----------------------

    #: What the mark is, in the words of an error.
    MARK_WORD = "comment"

    def _server_params(self) -> dict[str, Any]:
        assert isinstance(self.server, PostgresServer)
        return server_params(self.server, self.database)

    def _find(self, admin: Any, name: str) -> list[Found]:
        return find(admin, "d.datname = %s", (name,))

    def _survey(self, admin: Any) -> list[Found]:
        return survey(admin, self.project, self.family)

    def _quote(self, name: str) -> str:
        return quote(name)

    def _use(self, name: str) -> None:
        """Point the (already re-initialised) database object at database ``name`` of the server."""
        repoint(self.database, name)

    @contextmanager
    def _admin(self) -> Iterator[Any]:
        assert isinstance(self.server, PostgresServer)
        connection = self.server.connect(self.server.database)
        try:
            yield connection
        finally:
            connection.close()

    @contextmanager
    def _locked(self, admin: Any) -> Iterator[None]:
        """Serialise set-up and clean-up of this project's databases across sessions and workers."""
        key = f"peewee-async-testing {self.family}"
        execute(admin, "SELECT pg_advisory_lock(hashtext(%s))", (key,))
        try:
            yield
        finally:
            execute(admin, "SELECT pg_advisory_unlock(hashtext(%s))", (key,))

    @contextmanager
    def _undone_on_error(self, admin: Any) -> Iterator[None]:
        """Drop what the block made if it fails (still under the lock: no other session saw it)."""
        try:
            yield
        except BaseException:
            self._close_holder()
            for name in reversed(list(self._made)):
                self._drop_made(admin, name)
            raise

    def _hold(self, name: str) -> None:
        """Connect to ``name`` for the session: a held database is never stale, and never dropped by another."""
        assert self.server is not None
        self._holder = self.server.connect(name)
        execute(self._holder, "SET application_name = %s", (_HOLDER,))
        if self._holder.server_version >= 140000:  # a server that ends idle sessions must not end this one
            execute(self._holder, "SET idle_session_timeout = 0")

    def _close_holder(self) -> None:
        holder, self._holder = self._holder, None
        if holder is not None:
            holder.close()

    def _restore_object(self) -> None:
        restore, self._restore = self._restore, None
        if restore is not None:
            restore()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)

    def _ensure(self, admin: Any, name: str, fingerprint: str, *, keep: bool, template: str | None = None) -> bool:
        """Make database ``name`` (a copy of ``template``, or with the tables made here), unless ``keep`` and it
        is there with this schema; return whether it was kept. Refuse one that is not this project's, one that is
        held, and the template of another run's held clones (a live xdist run's)."""
        found = self._find(admin, name)
        if found:
            mark = self._ours(found[0])
            if found[0].held_by is not None:
                raise ConfigurationError(
                    f"The test database {name!r} is in use by another session (server process "
                    f"{found[0].held_by}). Runs that share a server need distinct names: give each one {SUFFIX_HINT}."
                )
            users = [one.name for one in self._held_clones(admin, name) if one.mark.get("run") != self.run]
            if users:
                raise ConfigurationError(
                    f"The test database {name!r} on {self._where()} is the template of {', '.join(users)}, which "
                    f"another run uses. Runs that share a server need distinct names: give each one {SUFFIX_HINT}."
                )
            if keep and mark.get("schema") == fingerprint and mark.get("template") == template:
                self._mark(admin, name, template=template, schema=fingerprint)  # this run's now
                return True
            why = self._drop(admin, found[0])
            if why is not None:
                raise ConfigurationError(
                    f"The test database {name!r} on {self._where()} was made for this project, but is {why}, "
                    f"so it cannot be made afresh. Drop it as its owner, or give this run other names with "
                    f"{SUFFIX_HINT}."
                )
        self._create(admin, name, template=template, fingerprint=fingerprint)
        return False

    def _ours(self, found: Found) -> dict[str, Any]:
        """The mark of ``found``, which must be this project's: else a ConfigurationError says whose it is."""
        why = self.project.whose(found)
        if why is None:
            return found.mark
        fix = "drop or rename that database yourself if nothing in it is needed"
        if not found.comment:
            fix = (
                f"if nothing in it is needed (it has no {self.MARK_WORD}, as a run killed while making it leaves "
                f"one), drop it yourself: DROP DATABASE {self._quote(found.name)};"
            )
        raise ConfigurationError(
            f'The database "{found.name}" on {self._where()} already exists and is not a test database of this '
            f"project ({why}; this project is {self.project}). peewee-async-testing neither uses nor drops a "
            f"database it did not make for the project, whatever the options: give this run other test database "
            f"names with {SUFFIX_HINT}, or {fix}"
        )

    def _create(
        self,
        admin: Any,
        name: str,
        *,
        template: str | None = None,
        fingerprint: str = "",
        mark: bool = True,
    ) -> None:
        """``CREATE DATABASE name``, a copy of ``template`` (which has the tables), else with the tables made
        here; marked as this project's at once, and with its schema once it has its tables."""
        assert isinstance(self.server, PostgresServer)
        copy = f" TEMPLATE {quote(template)}" if template else ""
        quick = "" if self.server.attached else _quick_copy(self.server)
        execute(admin, f"CREATE DATABASE {quote(name)}{copy}{quick}")
        try:
            if mark:  # at once: a run killed before its comment leaves a database that blocks the name
                self._mark(admin, name, template=template, schema=fingerprint if template else "")
        finally:
            self._made[name] = fetch(admin, "SELECT oid FROM pg_database WHERE datname = %s", (name,))[0][0]
        if template is None:
            if self.server is not None and self.server.attached:
                # Its first connection ours, so that a refusal (pg_hba.conf) is said with the DSN masked: the
                # traceback of peewee's own connect would show psycopg2's, which holds the password.
                self.server.connect(name).close()
            self._use(name)
            self.build(self.database)
            if mark:
                self._mark(admin, name, template=None, schema=fingerprint)

    def _mark(self, admin: Any, name: str, *, template: str | None, schema: str) -> None:
        mark = self.project.mark(name, template=template, schema=schema, run=self.run, kept=self.reuse)
        execute(admin, f"COMMENT ON DATABASE {quote(name)} IS %s", (mark,))

    def _drop(self, admin: Any, found: Found) -> str | None:
        """Drop ``found``, which is not this session's own, without FORCE: None, else why it is kept."""
        assert self.server is not None
        cannot = f"owned by role {found.owner}, which {self.server.user} cannot drop"
        if not found.may_drop:
            return cannot
        if found.held_by is not None:
            return "in use"
        try:
            execute(admin, f"DROP DATABASE {quote(found.name)}")
        except psycopg2.errors.ObjectInUse:
            return "in use"
        except psycopg2.errors.InsufficientPrivilege:
            return cannot
        except psycopg2.errors.InvalidCatalogName:
            pass  # gone already
        return None

    def _drop_made(self, admin: Any, name: str) -> None:
        """Drop ``name`` if it is still the database this session made (by its oid), connections and all."""
        oid = self._made.pop(name, None)
        if oid is not None and fetch(admin, "SELECT 1 FROM pg_database WHERE oid = %s AND datname = %s", (oid, name)):
            execute(admin, f"DROP DATABASE IF EXISTS {quote(name)} WITH (FORCE)")
        elif oid is not None:
            self.kept.append(f"{name} (replaced by another during the session)")

    def _drop_template_unless_held(self, admin: Any) -> None:
        """The last worker out drops the template, if this run made it and no held database was cloned from it."""
        found = self._find(admin, self.template)
        if not found or self.project.whose(found[0]) is not None or self._held_clones(admin, self.template):
            return
        if found[0].mark.get("run") != self.run:
            self.kept.append(f"{self.template} (made by another run)")
            return
        self._drop(admin, found[0])

    def _held_clones(self, admin: Any, template: str) -> list[Found]:
        return [found for found in self._clones(self._survey(admin), template) if found.held_by is not None]

    def _clones(self, found: Sequence[Found], template: str) -> list[Found]:
        return [one for one in found if self.project.whose(one) is None and one.mark.get("template") == template]

    def _drop_stale(self, admin: Any) -> None:
        """Drop this project's test databases that crashed runs left: none a connection holds, none whose clone
        is kept, none of this run's other workers, none a run kept for reuse; say which others it met and why it
        kept them."""
        found = [one for one in self._survey(admin) if one.name not in (self.name, self.template)]
        stale = []
        for one in found:
            why = self.project.whose(one)
            if why is not None:
                self.kept.append(f"{one.name} ({why})")
            elif one.mark.get("run") != self.run and one.mark.get("kept"):
                self.kept.append(f"{one.name} (kept for --peewee-reuse-db)")
            elif one.mark.get("run") != self.run:
                stale.append(one)
        left = {one.name for one in found}
        for one in sorted(stale, key=lambda one: bool(self._clones(found, one.name))):  # templates last
            clones = [clone.name for clone in self._clones(found, one.name) if clone.name in left]
            why = f"the template of {' and '.join(clones)}" if clones else self._drop(admin, one)
            if why is None:
                self.dropped_stale.append(one.name)
                left.discard(one.name)
            else:
                self.kept.append(f"{one.name} ({why})")

    def _where(self) -> str:
        assert self.server is not None
        return f"{self.server.host}:{self.server.port}"


def _quick_copy(server: PostgresServer) -> str:
    """The quicker way to copy the template on a server without durability (fsync off), from PostgreSQL 15:
    copying its files and checkpointing beats writing every page to the WAL."""
    major = (server.version or "0").split(".")[0]
    return " STRATEGY FILE_COPY" if major.isdigit() and int(major) >= 15 else ""
