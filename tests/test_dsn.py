"""A server's DSN: read as libpq reads it, every parameter honoured on every connection or refused, the password
shown nowhere (errors, reprs, tracebacks' locals), and the errors naming where the DSN came from."""

from __future__ import annotations

import random
import string
import traceback
import urllib.parse
from typing import Any

import peewee_async
import psycopg2.extensions
import pytest

from peewee_async_testing import MariaDBServer, PostgresServer
from peewee_async_testing.dsn import _without_secrets_read, mask, read_mysql
from peewee_async_testing.exceptions import ConfigurationError, ServerError
from peewee_async_testing.mariadb import MYSQL_DSN_ENV
from peewee_async_testing.server import DSN_ENV

from .production import PASSWORD, Production


@pytest.fixture(autouse=True)
def _no_environment_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DSN_ENV, raising=False)
    monkeypatch.delenv(MYSQL_DSN_ENV, raising=False)


def _shown(error: BaseException) -> str:
    """Everything a traceback of ``error`` can show: its message, its chain, and the locals of every frame it
    came through (the test's own aside)."""
    assert error.__traceback__ is not None
    frames = error.__traceback__.tb_next
    shown = traceback.TracebackException(type(error), error, frames, capture_locals=True)
    return "".join(shown.format()) + repr(error)


#: A DSN in each form, with the password (or more) in it, and how errors and reprs show it.
FORMS = {
    "userinfo": (f"postgresql://app:{PASSWORD}@db.example:6543/app", "postgresql://app:***@db.example:6543/app"),
    "percent-encoded": (
        f"postgres://app:{urllib.parse.quote(PASSWORD + '@/?#:', safe='')}@db.example/app",
        "postgres://app:***@db.example/app",
    ),
    "?password=": (
        f"postgresql://app@db.example/app?password={PASSWORD}&sslmode=disable",
        "postgresql://app@db.example/app?password=***&sslmode=disable",
    ),
    "&password=": (
        f"postgresql://db.example/app?sslmode=disable&password={PASSWORD}",
        "postgresql://db.example/app?sslmode=disable&password=***",
    ),
    "key=value": (
        f"host=db.example user=app password={PASSWORD} dbname=app",
        "host=db.example user=app password=*** dbname=app",
    ),
    "quoted": (
        f"host=db.example password = '{PASSWORD} \\' x' dbname=app",
        "host=db.example password = *** dbname=app",
    ),
    "empty value": (f"host=db.example password= {PASSWORD}", "host=db.example password= ***"),
    "sslpassword": (f"host=db.example sslpassword={PASSWORD}", "host=db.example sslpassword=***"),
    "?password= with an @": (
        f"postgresql://app@db.example/app?password={PASSWORD}@Tail",
        "postgresql://app@db.example/app?password=***",
    ),
}


@pytest.mark.parametrize("form", FORMS)
def test_a_server_shows_its_dsn_masked_and_connects_with_the_password(form: str) -> None:
    dsn, masked = FORMS[form]
    server = PostgresServer(dsn=dsn)
    assert repr(server) == f"<PostgresServer attached {masked}>"
    params = server.connect_params("tests")
    for shown in (repr(server.dsn), repr(params), repr(server.password), repr(vars(server))):
        assert PASSWORD not in shown
    secret = params.get("password") or params.get("sslpassword")
    assert str(secret).startswith(PASSWORD), "the driver gets the password itself"


def test_the_dsn_property_is_a_url_libpq_reads_back_to_the_same_parameters() -> None:
    password = "a@b/c?d#e f%'\"\\:"
    quoted = password.replace("\\", "\\\\").replace("'", "\\'")
    server = PostgresServer(
        dsn=f"host=/var/run/postgresql port=6543 user='b@d user' password='{quoted}' "
        "options='-c search_path=x,public' application_name=ci"
    )
    assert psycopg2.extensions.parse_dsn(server.dsn) == {
        "host": "/var/run/postgresql",
        "port": "6543",
        "user": "b@d user",
        "password": password,
        "dbname": "postgres",
        "options": "-c search_path=x,public",
        "application_name": "ci",
    }
    assert server.dsn.startswith("postgresql://")
    assert "a@b" not in repr(server.dsn)
    ipv6 = PostgresServer(dsn="postgresql://[::1]:7/db")
    assert psycopg2.extensions.parse_dsn(ipv6.dsn) == {"host": "::1", "port": "7", "user": "postgres", "dbname": "db"}


@pytest.mark.parametrize(
    ("dsn", "masked"),
    [
        (
            "postgresql://app:s3cret@db.example/shop?sslmode=require",
            "postgresql://app:***@db.example/shop?sslmode=require",
        ),
        ("host=db password=ab cd", "host=db password=*** ***"),  # what libpq cannot read is masked too
        ("postgresql://app:s3/cret", "postgresql://app:***/***"),  # the @host left out: no port, a password
        (
            "postgresql://db/shop?password=s3cret&application_name=a@b",
            "postgresql://db/shop?password=***&application_name=a@b",
        ),
        ("postgresql://shopper@db/shop?password=Wx@Tail-Of-Secret-42", "postgresql://shopper@db/shop?password=***"),
        ("postgresql://db?password=Wx@Tail-Of-Secret-42", "postgresql://***@***"),  # libpq: user db?pass..., host Tail
        ("postgresql://app:pa?ss@db/shop", "postgresql://app:***@***/***"),  # libpq: password pa?ss
        ("postgresql://db/shop?password", "postgresql://db/shop?***"),
        ("postgresql://db/shop?pass%77ord=s3cret&user=app", "postgresql://db/shop?pass%77ord=***&user=app"),
        ("postgresql://db/shop?s3cret", "postgresql://db/shop?***"),
        ("host=db s3cr#t=x port=1", "host=db ***=*** port=1"),
    ],
)
def test_mask_hides_what_may_be_a_secret(dsn: str, masked: str) -> None:
    assert mask(dsn) == masked


#: What a password can hold that a DSN's syntax also uses.
TRICKY = "@/?#%&=:'\" \\"


def _passwords(count: int) -> list[str]:
    """``count`` passwords, the same each run, of letters, digits and :data:`TRICKY` characters."""
    rng = random.Random(12)
    alphabet = string.ascii_letters + string.digits + TRICKY
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(8, 16))) for _ in range(count)]


def _forms(password: str) -> dict[str, str]:
    """DSNs holding ``password`` in each of the ways a user may write one, libpq-readable or not."""
    quoted = password.replace("\\", "\\\\").replace("'", "\\'")
    return {
        "userinfo, encoded": f"postgresql://app:{urllib.parse.quote(password, safe='')}@db.example:5432/shop",
        "userinfo, raw": f"postgresql://app:{password}@db.example/shop?sslmode=require",
        "query, encoded": f"postgresql://app@db.example/shop?password={urllib.parse.quote(password, safe='')}",
        "query, @ / : ? raw": f"postgresql://app@db.example/shop?password={urllib.parse.quote(password, safe='@/:?')}",
        "query, no path": f"postgresql://db.example?sslmode=disable&password={urllib.parse.quote(password, safe='@')}",
        "key=value": f"host=db.example user=app password='{quoted}' dbname=shop",
    }


def test_mask_shows_no_password_of_a_few_hundred_with_the_characters_of_a_dsn_in_them() -> None:
    leaks = []
    for password in _passwords(400):
        for form, dsn in _forms(password).items():
            shown = mask(dsn)
            if any(secret in shown for secret in (password, urllib.parse.quote(password, safe=""))):
                leaks.append(f"{form}: {dsn!r} -> {shown!r}")
    assert not leaks, f"{len(leaks)} leaks, such as:\n" + "\n".join(leaks[:5])


def test_the_backstop_masks_what_libpq_reads_wherever_the_masking_left_it() -> None:
    encoded = urllib.parse.quote(PASSWORD + "@/", safe="")
    dsn = f"postgresql://app@db/shop?password={encoded}&sslpassword={PASSWORD}x"
    assert _without_secrets_read(dsn, dsn) == "postgresql://app@db/shop?password=***&sslpassword=***"
    assert _without_secrets_read(dsn.lower(), dsn) == "postgresql://app@db/shop?password=***&sslpassword=***"
    same = "postgresql://postgres:postgres@db/postgres"
    assert mask(same) == "postgresql://postgres:***@db/postgres", "what the user name shows anyway stays"


#: DSNs libpq cannot read, or a session cannot use: the error names what is wrong, and never the password.
UNUSABLE = {
    "bad scheme": (f"mysql://root:{PASSWORD}@db.example/app", "is not a PostgreSQL DSN"),
    "invalid port": (f"postgresql://app:{PASSWORD}@db.example:notaport/app", "has a port that is not a number"),
    "port out of range": (f"host=db.example port=70000 password={PASSWORD}", "has a port that is not a number"),
    "unencoded /": (f"postgresql://app:{PASSWORD}/x@db.example/app", "percent-encode"),
    "unencoded @": (f"postgresql://app:p@ss-{PASSWORD}@db.example/app", "percent-encode"),
    "unencoded @ in the query": (f"postgresql://db.example?password=x@{PASSWORD}", "percent-encode"),
    "no = after a word": (f"host=db.example password=ab {PASSWORD}", "is not a DSN libpq can read"),
    "unterminated quote": (f"host=db.example password='{PASSWORD}", "unterminated quoted string"),
    "misspelled key": (f"postgresql://db.example/app?pasword={PASSWORD}", 'invalid URI query parameter: "***"'),
    "bad percent": (f"postgresql://db.example/app?password={PASSWORD}%zz", 'invalid percent-encoded token: "***"'),
    "a quote in the piece": (f'host=db.example password=ab {PASSWORD}"x{PASSWORD}', "is not a DSN libpq can read"),
    "several hosts": (f"postgresql://app:{PASSWORD}@h1,h2/app", "names several servers"),
    "service": (f"service=ci password={PASSWORD}", "sets service"),
    "replication": (f"host=db.example replication=database password={PASSWORD}", "sets replication"),
}


@pytest.mark.parametrize("case", UNUSABLE)
def test_a_dsn_that_cannot_be_used_is_a_configuration_error_that_shows_no_password(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dsn, message = UNUSABLE[case]
    with pytest.raises(ConfigurationError) as raised:
        PostgresServer(dsn=dsn)
    assert str(raised.value).startswith("PostgresServer(dsn=...) (")
    assert message in str(raised.value)
    assert PASSWORD not in _shown(raised.value)
    monkeypatch.setenv(DSN_ENV, dsn)
    with pytest.raises(ConfigurationError, match=r"^\$PEEWEE_ASYNC_TESTING_DSN \(") as raised:
        PostgresServer()
    assert PASSWORD not in _shown(raised.value)


def test_errors_name_the_origin_they_are_given() -> None:
    with pytest.raises(ConfigurationError, match=r"^--peewee-dsn \(mysql://root:\*\*\*@db.example/app\) is not"):
        PostgresServer(dsn=f"mysql://root:{PASSWORD}@db.example/app", origin="--peewee-dsn")
    assert PostgresServer(dsn="postgresql://db.example", origin="--peewee-dsn").origin == "--peewee-dsn"
    assert PostgresServer(dsn="postgresql://db.example").origin == "PostgresServer(dsn=...)"
    assert PostgresServer().origin is None


def _failing(production: Production) -> dict[str, str]:
    wrong = PASSWORD + "-wrong"
    return {
        "server down": f"postgresql://app:{PASSWORD}@127.0.0.1:1/postgres",
        "wrong password": production.dsn().replace(PASSWORD, wrong),
        "?password=": f"postgresql://app@127.0.0.1:{production.port}/postgres?password={wrong}",
        "key=value": f"host=127.0.0.1 port={production.port} user=app password='{wrong}'",
        "sslmode=require": production.dsn(sslmode="require"),
    }


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("server down", "Connection refused"),
        ("wrong password", 'password authentication failed for user "app"'),
        ("?password=", 'password authentication failed for user "app"'),
        ("key=value", 'password authentication failed for user "app"'),
        ("sslmode=require", "server does not support SSL, but SSL was required"),
    ],
)
def test_a_failed_connection_is_a_server_error_with_no_driver_frame_and_no_password(
    production: Production, case: str, reason: str
) -> None:
    server = PostgresServer(dsn=_failing(production)[case], origin="--peewee-dsn")
    with pytest.raises(ServerError) as raised:
        server.connect("postgres")
    text = str(raised.value)
    assert text.startswith("Cannot connect to database postgres of the server of --peewee-dsn (")
    assert reason in text
    assert raised.value.__context__ is None, "the driver's error, and its frames, are kept"
    assert raised.value.__cause__ is None
    assert PASSWORD not in _shown(raised.value)


async def _first_row(database: Any, cursor: Any) -> Any:
    return await cursor.fetchone()


SETTINGS_SQL = "SELECT current_user, current_setting('application_name'), current_setting('search_path')"
EXPECTED = ("app", "dsn-check", "peewee_dsn_check,public")


def _first_row_of(connection: Any, sql: str) -> Any:
    """The first row of ``sql`` on ``connection``, which is closed after."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchone()
    finally:
        connection.close()


def test_every_parameter_of_the_url_reaches_the_admin_connections(production: Production) -> None:
    dsn = (
        f"postgresql://nobody:wrong@nowhere.invalid:1/nothing?host=127.0.0.1&port={production.port}&user=app"
        f"&password={PASSWORD}&dbname=postgres&application_name=dsn-check&connect_timeout=30&sslmode=disable"
        "&options=-c%20search_path%3Dpeewee_dsn_check%2Cpublic"
    )
    server = PostgresServer(dsn=dsn)
    assert (server.host, server.port, server.user, server.database) == ("127.0.0.1", production.port, "app", "postgres")
    assert _first_row_of(server.connect("postgres"), SETTINGS_SQL) == EXPECTED


def test_the_admin_connections_are_named_on_the_server_unless_the_dsn_names_them(production: Production) -> None:
    connection = PostgresServer(dsn=production.dsn()).connect("postgres")
    assert _first_row_of(connection, "SELECT current_setting('application_name')") == ("peewee-async-testing",)


def test_every_parameter_of_the_key_value_form_reaches_the_admin_connections(production: Production) -> None:
    dsn = (
        f"host=127.0.0.1 port={production.port} user=app password='{PASSWORD}' application_name=dsn-check "
        "options='-c search_path=peewee_dsn_check,public'"
    )
    assert _first_row_of(PostgresServer(dsn=dsn).connect("postgres"), SETTINGS_SQL) == EXPECTED


async def test_every_parameter_reaches_an_aiopg_database_built_from_connect_params(production: Production) -> None:
    dsn = production.dsn(application_name="dsn-check", options="-c search_path=peewee_dsn_check,public")
    database = peewee_async.PostgresqlDatabase(**PostgresServer(dsn=dsn).connect_params("postgres"))
    try:
        assert await database.aio_execute_sql(SETTINGS_SQL, fetch_results=_first_row) == EXPECTED
    finally:
        await database.aio_close()


async def test_psycopg_3_gets_what_its_pool_passes_on_and_a_clear_refusal_for_the_rest(
    production: Production,
) -> None:
    server = PostgresServer(dsn=production.dsn(sslmode="require", options="-c x=y"))
    with pytest.raises(ConfigurationError) as raised:
        server.connect_params("tests", driver="psycopg")
    refusal = "?sslmode=require&options=-c%20x%3Dy) sets options, sslmode, which peewee_async.Psycopg3Database "
    assert refusal in str(raised.value)
    assert "PGOPTIONS, PGSSLMODE" in str(raised.value)
    with pytest.raises(ConfigurationError, match="a password with characters") as raised:
        PostgresServer(dsn=f"host=db.example password='{PASSWORD}/x'").connect_params("x", driver="psycopg")
    assert PASSWORD not in _shown(raised.value)
    params: dict[str, Any] = PostgresServer(dsn=production.dsn()).connect_params("postgres", driver="psycopg")
    database = peewee_async.Psycopg3Database(**params)
    try:
        assert await database.aio_execute_sql("SELECT current_user", fetch_results=_first_row) == ("app",)
    finally:
        await database.aio_close()


def test_what_the_dsn_leaves_out_comes_from_libpqs_environment_as_for_psql(
    production: Production, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = {"PGHOST": "127.0.0.1", "PGPORT": str(production.port), "PGUSER": "app", "PGPASSWORD": PASSWORD}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    server = PostgresServer(dsn="postgresql:///postgres")
    assert (server.host, server.port, server.user) == ("127.0.0.1", production.port, "app")
    assert PASSWORD not in repr(server) + repr(vars(server)) + repr(server.connect_params("postgres"))
    server.connect("postgres").close()
    own = PostgresServer(dsn="postgresql://ci:pw@db.example:7/x")
    assert (own.host, own.port, own.user, own.password) == ("db.example", 7, "ci", "pw"), "the DSN's own win"
    monkeypatch.setenv("PGHOST", "h1,h2")
    with pytest.raises(ConfigurationError, match="names several servers"):
        PostgresServer(dsn="postgresql:///postgres")


def test_connect_timeout_is_refused_for_aiopg_which_takes_it_for_every_statements_timeout(
    production: Production,
) -> None:
    server = PostgresServer(dsn=production.dsn(connect_timeout="5"))
    with pytest.raises(ConfigurationError, match=r"sets connect_timeout, .*PGCONNECT_TIMEOUT") as raised:
        server.connect_params("postgres")
    assert PASSWORD not in _shown(raised.value)
    server.connect("postgres").close()  # the admin connections (psycopg2) read it as libpq does


# -- MySQL and MariaDB URLs (MariaDBServer) --------------------------------------------------------------------------


def test_a_mysql_url_is_read_percent_decoded_with_only_what_it_names() -> None:
    encoded = urllib.parse.quote(PASSWORD + "@/?#:", safe="")
    params = read_mysql(f"mysql://app%40ci:{encoded}@db.example:3307/shop%2Dtest", "--peewee-dsn")
    assert params == {
        "host": "db.example",
        "port": "3307",
        "user": "app@ci",
        "password": PASSWORD + "@/?#:",
        "database": "shop-test",
    }
    assert PASSWORD not in repr(params)
    assert read_mysql("mariadb://db.example", "x") == {"host": "db.example"}
    assert read_mysql("mysql://root:@[::1]/", "x") == {"host": "::1", "user": "root", "password": ""}


#: MySQL URLs a session cannot use: the error names what is wrong, and never the password.
UNUSABLE_MYSQL = {
    "another scheme": (f"postgresql://app:{PASSWORD}@db.example/app", "is not a MySQL DSN"),
    "key=value": (f"host=db.example password={PASSWORD}", "is not a MySQL DSN"),
    "invalid port": (f"mysql://app:{PASSWORD}@db.example:notaport/app", "has a port that is not a number"),
    "port out of range": (f"mysql://app:{PASSWORD}@db.example:70000/app", "has a port that is not a number"),
    "several hosts": (f"mysql://app:{PASSWORD}@h1:3306,h2:3306/app", "names several servers"),
    "parameters": (f"mysql://app@db.example/app?password={PASSWORD}", "has parameters"),
    "unencoded ?": (f"mysql://app:ab?{PASSWORD}@db.example/app", "has parameters"),
    "unencoded /": (f"mysql://app:ab/{PASSWORD}@db.example/app", "percent-encode"),
    "a path": (f"mysql://app:{PASSWORD}@db.example/app/more", "more than a database name"),
}


@pytest.mark.parametrize("case", UNUSABLE_MYSQL)
def test_a_mysql_url_that_cannot_be_used_is_a_configuration_error_that_shows_no_password(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dsn, message = UNUSABLE_MYSQL[case]
    with pytest.raises(ConfigurationError) as raised:
        MariaDBServer(dsn=dsn)
    assert str(raised.value).startswith("MariaDBServer(dsn=...) (")
    assert message in str(raised.value)
    assert PASSWORD not in _shown(raised.value)
    monkeypatch.setenv(MYSQL_DSN_ENV, dsn)
    with pytest.raises(ConfigurationError, match=r"^\$PEEWEE_ASYNC_TESTING_MYSQL_DSN \(") as raised:
        MariaDBServer()
    assert PASSWORD not in _shown(raised.value)


def test_mask_shows_no_password_of_a_mysql_url_of_a_few_hundred() -> None:
    leaks = []
    for password in _passwords(400):
        for dsn in (
            f"mysql://app:{urllib.parse.quote(password, safe='')}@db.example:3306/shop",
            f"mysql://app:{password}@db.example/shop",
        ):
            shown = mask(dsn)
            if any(secret in shown for secret in (password, urllib.parse.quote(password, safe=""))):
                leaks.append(f"{dsn!r} -> {shown!r}")
    assert not leaks, f"{len(leaks)} leaks, such as:\n" + "\n".join(leaks[:5])
