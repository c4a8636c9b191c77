"""Whose a database on a shared server is: test database names, the mark this library leaves on the
databases it makes, and what a session sees of them.

A mark is the database's comment (``COMMENT ON DATABASE``; on MySQL, which has no database comments, the comment
of a procedure in it: see :mod:`~peewee_async_testing.mysqldb`): :data:`MARK`, then JSON naming the project (the
configured database's module and name), the name the database was made under, the template it was cloned
from, its schema's fingerprint (empty while its tables are being made), the run that made it and, for one a
run keeps for reuse (``--peewee-reuse-db``), ``"kept": true``. A database
without this project's mark, or renamed since, is not the project's: nothing here drops or uses it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARK = "peewee-async-testing test database "
LEGACY_MARK = "peewee-async-testing schema "  # what versions before the marks wrote: no project in it
_MAX_NAME = 63  # bytes: PostgreSQL's NAMEDATALEN - 1
_HASH = 12  # hex digits: 48 bits, beyond a brute-forced collision of a few hours


def database_name(
    original: str | None, *, module: str = "", suffix: str = "", worker: str | None = None, sqlite: bool = False
) -> str:
    """``test_<name>[_<suffix>][_<worker>]`` in lower-case letters, digits and ``_``, at most 63 bytes.

    ``<name>`` is the app's database name (for SQLite, its file's stem); for a database created
    uninitialised, with no name, the top package of ``module``, the module holding it (``myapp.db``: ``myapp``).
    A name or suffix that has to change to fit (``Shop``, ``café``, ``shop-api``, ``py3.11``), or that ends
    like a worker's part (``shop_gw0``), gets a hash of itself, so that two names never share a test database:
    ``shop`` is ``test_shop``, ``Shop`` is ``test_shop_<12 hex digits>``. Too long a name is cut short, with a
    hash of the whole, before the worker's part.
    """
    base = (Path(original).stem if sqlite else original) if original else module.partition(".")[0] or "peewee"
    head = "_".join(part for part in ("test", _distinct(base), suffix and _distinct(suffix)) if part)
    tail = f"_{_plain(worker)}" if worker else ""
    if len(head.encode()) + len(tail.encode()) > _MAX_NAME:
        head = head[: _MAX_NAME - len(tail) - _HASH - 1] + "_" + _hash(base, suffix)
    return head + tail


def _plain(text: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", text.lower())


def _hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:_HASH]


def _distinct(text: str) -> str:
    """``text`` itself when it is plain, else made plain with a hash of it (also when it only looks hashed, or
    ends like a worker's part: ``shop_gw0`` must not be the clone of ``shop`` for worker ``gw0``)."""
    looks_made = re.fullmatch(rf".*_[0-9a-f]{{{_HASH}}}|(.*_)?gw[0-9]+", text)
    if _plain(text) == text and not looks_made:
        return text
    return "_".join(part for part in (_plain(text).strip("_"), _hash(text)) if part)


@dataclass
class Found:
    """A database on the server, as a session sees it."""

    name: str
    oid: int  # (0 on MySQL, which has no such number: its marks tell a session's own databases apart)
    comment: str | None
    owner: str
    may_drop: bool  # whether the session's role owns it (or is a superuser)
    held_by: int | None  # the server process of a connection to it, if any

    @property
    def mark(self) -> dict[str, Any]:
        """What this library's comment on it says (empty without one)."""
        comment = self.comment or ""
        try:
            mark = json.loads(comment[len(MARK) :]) if comment.startswith(MARK) else {}
        except ValueError:
            return {}
        return mark if isinstance(mark, dict) else {}


@dataclass(frozen=True)
class Project:
    """Whose test databases these are: the configured database's module, and its name (None if it has none)."""

    module: str
    database: str | None

    def __str__(self) -> str:
        return f"{self.module}, database {self.database}" if self.database else self.module

    def mark(self, name: str, *, template: str | None, schema: str, run: str, kept: bool = False) -> str:
        """The comment of database ``name``, made by this library for this project (``kept`` for reuse)."""
        fields = {"module": self.module, "database": self.database, "name": name, "template": template}
        more = {"kept": True} if kept else {}
        return MARK + json.dumps({**fields, "schema": schema, "run": run, **more}, sort_keys=True)

    def whose(self, found: Found) -> str | None:
        """None when ``found`` is a test database this library made for this project; else whose it is."""
        mark = found.mark
        if not mark:
            if (found.comment or "").startswith(LEGACY_MARK):
                return "made by an older peewee-async-testing, which did not record the project"
            return "not made by peewee-async-testing"
        other = Project(str(mark.get("module")), mark.get("database"))
        if other != self:
            return f"made for another project: {other}"
        if mark.get("name") != found.name:
            return f"renamed from {mark.get('name')}"
        return None


def find(admin: Any, condition: str, params: Sequence[Any]) -> list[Found]:
    """The server's databases that meet the SQL ``condition`` on ``pg_database AS d``, by name."""
    rows = fetch(
        admin,
        "SELECT d.datname, d.oid, shobj_description(d.oid, 'pg_database'), pg_get_userbyid(d.datdba), "
        "pg_has_role(d.datdba, 'USAGE'), (SELECT min(a.pid) FROM pg_stat_activity AS a WHERE a.datid = d.oid) "
        f"FROM pg_database AS d WHERE {condition} ORDER BY d.datname",
        params,
    )
    return [Found(*row) for row in rows]


def survey(admin: Any, project: Project, family: str) -> list[Found]:
    """Every database this library made for ``project``, and every one named as its test databases are
    (``family``, ``family_...``), whoever made it."""
    condition = "shobj_description(d.oid, 'pg_database') LIKE %s OR d.datname = %s OR d.datname LIKE %s"
    return of_project(find(admin, condition, (like_prefix(MARK), family, like_prefix(family + "_"))), project, family)


def of_project(found: Sequence[Found], project: Project, family: str) -> list[Found]:
    """Of the databases ``found``, those of ``project``'s: made for it, or named as its test databases are."""
    named = {one.name for one in found if one.name == family or one.name.startswith(family + "_")}
    return [one for one in found if one.name in named or project.whose(one) is None]


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def like_prefix(prefix: str) -> str:
    return re.sub(r"([\\%_])", r"\\\1", prefix) + "%"


def execute(connection: Any, sql: str, params: Sequence[Any] = ()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def fetch(connection: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())
