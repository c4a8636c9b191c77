"""A server's DSN: read by libpq's own parser, checked that a session can use it, and shown with its secrets masked.

Both of libpq's forms are read, with every parameter: ``postgresql://user:password@host:port/dbname?sslmode=
require&...`` and ``host=... port=... user=... password='...'``. Secrets never show: a password is kept as a
:class:`Password` and a DSN as a :class:`DSN`, strings that the drivers use as they are but whose ``repr`` is
masked, so that a traceback's locals (``pytest -l``, ``--tb=long``) or the repr of a dict holding them show
``***``; :func:`mask` hides the secrets of a DSN in text, also of one that libpq cannot read.

Example::

    >>> mask("postgresql://app:s3cret@db.example/shop?sslmode=require")
    'postgresql://app:***@db.example/shop?sslmode=require'
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Iterable, Mapping

from .exceptions import ConfigurationError

MASK = "***"
#: libpq's connection parameters (libpq 18), each with the environment variable that sets it (or None).
KEYWORDS: dict[str, str | None] = {
    "service": "PGSERVICE",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "passfile": "PGPASSFILE",
    "channel_binding": "PGCHANNELBINDING",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "dbname": "PGDATABASE",
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "client_encoding": "PGCLIENTENCODING",
    "options": "PGOPTIONS",
    "application_name": "PGAPPNAME",
    "fallback_application_name": None,
    "keepalives": None,
    "keepalives_idle": None,
    "keepalives_interval": None,
    "keepalives_count": None,
    "tcp_user_timeout": None,
    "sslmode": "PGSSLMODE",
    "sslnegotiation": "PGSSLNEGOTIATION",
    "sslcompression": "PGSSLCOMPRESSION",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcertmode": "PGSSLCERTMODE",
    "sslpassword": None,
    "sslrootcert": "PGSSLROOTCERT",
    "sslcrl": "PGSSLCRL",
    "sslcrldir": "PGSSLCRLDIR",
    "sslsni": "PGSSLSNI",
    "sslkeylogfile": None,
    "requirepeer": "PGREQUIREPEER",
    "require_auth": "PGREQUIREAUTH",
    "min_protocol_version": "PGMINPROTOCOLVERSION",
    "max_protocol_version": "PGMAXPROTOCOLVERSION",
    "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION",
    "ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION",
    "gssencmode": "PGGSSENCMODE",
    "krbsrvname": "PGKRBSRVNAME",
    "gsslib": "PGGSSLIB",
    "gssdelegation": "PGGSSDELEGATION",
    "replication": None,
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "load_balance_hosts": "PGLOADBALANCEHOSTS",
    "scram_client_key": None,
    "scram_server_key": None,
    "oauth_issuer": None,
    "oauth_client_id": None,
    "oauth_client_secret": None,
    "oauth_scope": None,
}
#: The parameters whose values are secrets: masked wherever a DSN is shown.
SECRETS = frozenset({"password", "sslpassword", "oauth_client_secret", "scram_client_key", "scram_server_key"})
#: Parameters a test session cannot use, and why.
REFUSED = {
    "service": "its parameters, kept in a service file, would be hidden from this library: give them in the DSN",
    "replication": "a replication connection cannot make the test databases: leave it out",
}
#: What peewee-async's psycopg 3 pool (``PsycopgPoolBackend``) passes on: it builds its URL from these alone.
PSYCOPG_POOL_PARAMS = ("host", "port", "user", "password", "dbname")
#: Characters that peewee-async's psycopg 3 pool puts into its URL unencoded, and that libpq then misreads.
_UNSAFE_IN_URL = {"host": "%/@?#: ", "user": "%/@?#: ", "password": "%/@?# "}


class Password(str):
    """A password: the string itself for the drivers, ``'***'`` in its repr (tracebacks' locals, reprs)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(MASK)


class DSN(str):
    """A DSN: the string itself for the drivers, with its password and other secrets masked in its repr."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(mask(self))


def hide(dsn: str | None) -> DSN | None:
    """``dsn`` as a :class:`DSN` (None when empty): bind it so, and tracebacks show that variable masked."""
    return DSN(dsn) if dsn else None


_URL = re.compile(r"(?P<scheme>\s*[A-Za-z][A-Za-z0-9+.-]*://)(?P<rest>.*)", re.DOTALL)
# A key = value pair as libpq reads one: a value in single quotes (\ escapes), or bare up to a space.
_PAIR = re.compile(r"\s*(?P<key>[^\s=]+)\s*=\s*(?P<value>'(?:[^'\\]|\\.)*(?:'|\Z)|(?:[^\s\\]|\\.)*)", re.DOTALL)
_PLAIN = re.compile(r"[^/?#&=]*")  # what a URL's user name looks like (else it may be a query, holding a secret)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # what a parameter's name looks like (else it may be a secret)
_PORTS = re.compile(r"[0-9,]*")


def mask(dsn: str) -> str:
    """``dsn`` with every secret replaced by ``***``: the password of ``user:password@``, ``?password=``,
    ``password=`` (quoted or not), ``sslpassword``... Where libpq's reading could go astray (an unknown
    parameter, an unencoded ``@`` or ``/``, a word that is no ``key=value``) it masks the more, never the less.
    """
    url = _URL.match(dsn)
    shown = url["scheme"] + _mask_url(url["rest"]) if url else _mask_pairs(dsn)
    return _without_secrets_read(shown, dsn)


def _without_secrets_read(shown: str, dsn: str) -> str:
    """``shown`` with every secret that libpq reads in ``dsn`` (as it is, or percent-encoded) replaced by ``***``:
    the backstop to a masking that misread the DSN. A secret that is also (in) a name or value shown (a password
    ``postgres`` of user ``postgres``) stays, as that shows it anyway."""
    import psycopg2.extensions

    try:
        params: dict[str, str] = psycopg2.extensions.parse_dsn(dsn)
    except (psycopg2.ProgrammingError, UnicodeDecodeError):
        return shown
    values = [value for key, value in params.items() if key not in SECRETS] + [*params, "postgresql://"]
    for key in SECRETS & params.keys():
        secret = params[key]
        if not secret or any(secret in value for value in values):
            continue
        for form in {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote(secret), _lower_hex(secret)}:
            shown = shown.replace(form, MASK)
    return shown


def _lower_hex(text: str) -> str:
    return re.sub("%[0-9A-F]{2}", lambda escape: escape[0].lower(), urllib.parse.quote(text, safe=""))


def _mask_url(rest: str) -> str:
    """What follows a URL's scheme, masked. Its ``user:password@`` ends at the last ``@`` before the query (an
    unencoded ``@`` or ``/`` of a password stays in what is masked). The query starts at the first ``?`` after a
    path; with no path before it, the ``?`` may be the password's (as libpq reads it) or start the query, so an
    ``@`` after it may end ``user:password@`` or be a query value's: then the host is masked too."""
    before = rest.partition("?")[0]
    bound = len(before) if "/" in before else (rest.find("/") if "/" in rest else len(rest))
    userinfo, at, _ = rest[:bound].rpartition("@")
    tail = rest[len(userinfo) + len(at) :]
    user, colon, _ = userinfo.partition(":")
    user = user if _PLAIN.fullmatch(user) else MASK
    head = f"{user}{':' + MASK if colon else ''}{at}"
    place, question, query = tail.partition("?")
    hostspec, slash, path = place.partition("/")
    hosts = ",".join(_mask_port(host, hide=not at) for host in hostspec.split(","))
    hosts = MASK if "?" in userinfo else hosts
    if MASK in hosts and path:  # the host is (or holds) a password: what follows a / in it may be its end
        path = MASK
    pairs = "&".join(_mask_query_pair(pair) for pair in query.split("&")) if question else ""
    return f"{head}{hosts}{slash}{path}{question}{pairs}"


def _mask_port(host: str, *, hide: bool) -> str:
    """``host[:port]`` of a URL; with ``hide``, a port that is no number masked (``user:password`` where the
    ``@host`` was left out)."""
    name, colon, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
    if not colon or not hide or _PORTS.fullmatch(port):
        return host
    return f"{name}:{MASK}"


def _mask_query_pair(pair: str) -> str:
    key, equals, value = pair.partition("=")
    name = urllib.parse.unquote(key)
    if not equals:
        return pair if name in KEYWORDS and name not in SECRETS else MASK
    shown = value if name in KEYWORDS and name not in SECRETS else MASK
    return f"{key if _NAME.fullmatch(name) else MASK}={shown}"


def _mask_pairs(text: str) -> str:
    shown, position = [], 0
    while position < len(text.rstrip()):
        pair = _PAIR.match(text, position)
        if pair is None:  # not a key = value: libpq stops reading here, and so does what is shown
            rest = text[position:]
            shown.append(rest[: len(rest) - len(rest.lstrip())] + MASK)
            break
        key = pair["key"]
        value = pair["value"] if key in KEYWORDS and key not in SECRETS else MASK
        name = key if _NAME.fullmatch(key) else MASK
        shown.append(
            text[pair.start() : pair.start("key")] + name + text[pair.end("key") : pair.start("value")] + value
        )
        position = pair.end()
    return "".join(shown)


def read(dsn: str, origin: str, *, environment: Iterable[str] = ()) -> dict[str, str]:
    """The parameters of ``dsn`` as libpq reads them, its secrets as :class:`Password`, checked that a test
    session can use them: a PostgreSQL DSN, one server, a port number, nothing of :data:`REFUSED`. Each
    parameter of ``environment`` that ``dsn`` leaves out is taken from its variable (:data:`KEYWORDS`), as
    libpq does.

    :raises ConfigurationError: naming ``origin`` (where the DSN came from) and the DSN, masked.
    """
    dsn = DSN(dsn)  # shown masked in a traceback through here
    params, problem = _parsed(dsn, environment)
    if problem is not None:  # raised here, where no local variable holds a piece of the DSN unmasked
        raise ConfigurationError(f"{origin} ({mask(dsn)}) {problem}")
    return params


def _parsed(dsn: str, environment: Iterable[str] = ()) -> tuple[dict[str, str], str | None]:
    """The parameters of ``dsn``, or none and what is wrong with it. (Not raised from here: this frame's
    locals, which a traceback can show, hold what libpq read, such as a misplaced password.)"""
    import psycopg2.extensions

    scheme = _scheme(dsn)
    if scheme not in (None, "postgresql://", "postgres://"):
        return {}, (
            "is not a PostgreSQL DSN: give a postgresql://user:password@host:port/dbname URL, "
            "or libpq's key=value form (host=... port=... user=... password=... dbname=...)."
        )
    try:
        params: dict[str, str] = psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.ProgrammingError as error:  # its message quotes the piece of the DSN it stumbled on
        return {}, f"is not a DSN libpq can read: {_reason(str(error), dsn)}."
    except UnicodeDecodeError:  # a %-encoded byte that is no UTF-8: psycopg2 cannot decode what libpq read
        return {}, "is not a DSN psycopg2 can read: a percent-encoded value is not UTF-8."
    for key in environment:
        variable = KEYWORDS[key]
        if not params.get(key) and variable and os.environ.get(variable):
            params[key] = os.environ[variable]
    problem = _problem(params, misplaced_at=scheme is not None and _misplaced_at(dsn))
    if problem is not None:
        return {}, problem
    return {key: Password(value) if key in SECRETS else value for key, value in params.items()}, None


def _scheme(dsn: str) -> str | None:
    url = _URL.match(dsn)
    return url["scheme"].strip() if url else None


#: The schemes of a MySQL or MariaDB URL (:func:`read_mysql`).
MYSQL_SCHEMES = ("mysql://", "mariadb://")


def read_mysql(dsn: str, origin: str) -> dict[str, str]:
    """The parts of a ``mysql://user:password@host:port/database`` URL that it names (``host``, ``port``,
    ``user``, ``password`` as a :class:`Password`, ``database``), percent-decoded, checked that a test session
    can use them: one server, a port number, no parameters. ``mariadb://`` is read the same.

    :raises ConfigurationError: naming ``origin`` (where the DSN came from) and the DSN, masked.
    """
    dsn = DSN(dsn)  # shown masked in a traceback through here
    params, problem = _parsed_mysql(dsn)
    if problem is not None:  # raised here, where no local variable holds a piece of the DSN unmasked
        raise ConfigurationError(f"{origin} ({mask(dsn)}) {problem}")
    return params


def _parsed_mysql(dsn: str) -> tuple[dict[str, str], str | None]:
    """The parts of a MySQL URL, or none and what is wrong with it (not raised from here: see :func:`_parsed`)."""
    if _scheme(dsn) not in MYSQL_SCHEMES:
        return {}, "is not a MySQL DSN: give a mysql://user:password@host:port/database URL."
    url = urllib.parse.urlsplit(dsn.strip())
    if url.query or url.fragment or "?" in dsn or "#" in dsn:
        return {}, (
            "has parameters (?...) or a fragment (#...), which are not read: leave them out, and percent-encode "
            "a ? or # of the password (%3F, %23)."
        )
    if "@" in url.path:
        return {}, "holds an @ after a /: percent-encode the password's / and @ (%2F, %40)."
    try:
        port = url.port
    except ValueError:
        port = 0
    if port == 0 or "," in url.netloc.rpartition("@")[2]:
        return {}, "has a port that is not a number from 1 to 65535, or names several servers."
    database = urllib.parse.unquote(url.path.removeprefix("/"))
    if "/" in url.path.removeprefix("/"):
        return {}, "has a path of more than a database name."
    parts = {"host": url.hostname or "", "port": str(port or ""), "user": urllib.parse.unquote(url.username or "")}
    params = {key: value for key, value in {**parts, "database": database}.items() if value}
    if url.password is not None:
        params["password"] = Password(urllib.parse.unquote(url.password))
    return params, None


def _misplaced_at(dsn: str) -> bool:
    """Whether a URL holds an ``@`` past its ``user:password@`` as libpq reads it (which ends at the first ``@``
    before any ``/``), or a user name with a ``?``: the sign of a password with an unencoded ``@`` or ``/``."""
    rest = dsn.split("://", 1)[1]
    at, slash = rest.find("@"), rest.find("/")
    after = rest[at + 1 :] if at != -1 and (slash == -1 or at < slash) else rest
    query_in_user = after is not rest and "?" in rest[:at].partition(":")[0]  # ...host?password=a@b: user host?...
    return query_in_user or "@" in after.split("?")[0]


def _problem(params: Mapping[str, str], *, misplaced_at: bool) -> str | None:
    """What a test session cannot use in ``params``, or None."""
    if misplaced_at or "@" in params.get("host", ""):
        return (
            "holds an @ that libpq does not read as the end of user:password@: in a URL, percent-encode the "
            "password's @, /, ? and # (%40, %2F, %3F, %23), or use the key=value form."
        )
    if any("," in params.get(key, "") for key in ("host", "hostaddr", "port")):
        return "names several servers: a session makes its test databases on one."
    port = params.get("port", "") or "5432"
    if not (port.isdigit() and 0 < int(port) < 65536):
        return "has a port that is not a number from 1 to 65535."
    for key, why in REFUSED.items():
        if key in params:
            return f"sets {key}, which a test session cannot use: {why}."
    return None


def _reason(message: str, dsn: str) -> str:
    """libpq's words on why it cannot read ``dsn``, the piece of the DSN it quotes masked (it can be a password)."""
    message = message.strip().removeprefix("invalid dsn: ")
    for opening, closing in (
        ('missing "=" after "', '" in connection info string'),
        ('invalid connection option "', '"'),
    ):
        if message.startswith(opening) and message.endswith(closing):
            return opening + _piece(message[len(opening) : len(message) - len(closing)], dsn) + closing
    head, quote, piece = message.partition(': "')
    if quote and piece.endswith('"'):
        return head + quote + _piece(piece[:-1], dsn) + '"'
    return message.split('"')[0].rstrip() or "libpq could not read it"


def _piece(piece: str, dsn: str) -> str:
    if piece in KEYWORDS and piece not in SECRETS:
        return piece
    return mask(dsn) if piece == dsn else MASK


def psycopg_pool_problem(params: Mapping[str, object]) -> str | None:
    """Why peewee-async's psycopg 3 pool (``peewee_async.Psycopg3Database``) cannot take ``params``, or None.

    It builds its URL from the host, port, user, password and database alone, unencoded, and passes
    nothing else on: any other parameter would be lost, and a character such as ``@`` or ``/`` would send
    its connections elsewhere.
    """
    extra = sorted(key for key in params if key not in (*PSYCOPG_POOL_PARAMS, "database"))
    if extra:
        variables = [KEYWORDS.get(key) for key in extra]
        instead = (
            f", or set {', '.join(name for name in variables if name)} in the environment instead (libpq reads "
            "them for every connection)"
            if all(variables)
            else ""
        )
        return (
            f"sets {', '.join(extra)}, which peewee_async.Psycopg3Database cannot pass on to its connections "
            "(peewee-async's psycopg pool builds its URL from the host, port, user and password alone). "
            f"Use peewee_async.PostgresqlDatabase (aiopg), which passes every parameter on{instead}."
        )
    for key, unsafe in _UNSAFE_IN_URL.items():
        if any(character in unsafe or character.isspace() for character in str(params.get(key) or "")):
            return (
                f"has a {key} with characters that peewee_async.Psycopg3Database puts into its pool's URL "
                f"unencoded ({' '.join(unsafe.strip())} or a space), where libpq would misread them. "
                f"Use peewee_async.PostgresqlDatabase (aiopg), or a {key} without them."
            )
    return None


def to_url(params: Mapping[str, str | None]) -> str:
    """A ``postgresql://`` URL that libpq reads back as ``params`` (every value percent-encoded)."""
    rest = {key: value for key, value in params.items() if value is not None}
    user, password = rest.pop("user", ""), params.get("password")
    host, port, dbname = rest.pop("host", ""), rest.pop("port", ""), rest.pop("dbname", "")
    rest.pop("password", None)
    userinfo = _quote(user) + ("" if password is None else ":" + _quote(password))
    where = f"[{host}]" if ":" in host else _quote(host)
    query = "&".join(f"{_quote(key)}={_quote(value)}" for key, value in rest.items())
    return (
        f"postgresql://{userinfo}{'@' if userinfo else ''}{where}{':' + port if port else ''}/{_quote(dbname)}"
        f"{'?' + query if query else ''}"
    )


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")
