import os

import psycopg2

from peewee_async_testing import PostgresServer

# A locale and settings apply to a server that PostgresServer starts, not to one
# named by PEEWEE_ASYNC_TESTING_DSN (whose own configuration applies): this
# example starts its own.
os.environ.pop("PEEWEE_ASYNC_TESTING_DSN", None)


def query(server: PostgresServer, sql: str) -> object:
    connection = psycopg2.connect(server.dsn)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchone()[0]
    finally:
        connection.close()


# The default locale is a UTF-8 one (C.UTF-8 where the system has it), in which
# letters fold as on a usual server.
with PostgresServer(settings={"work_mem": "64MB", "fsync": "on"}) as server:
    print("locale:", server.locale)
    assert query(server, "SELECT 'Радиоточка' ILIKE '%радиоточка%'") is True
    assert query(server, "SELECT lower('ÄБ')") == "äб"
    assert query(server, "SHOW work_mem") == "64MB"  # a setting of yours
    assert query(server, "SHOW fsync") == "on"  # a built-in one, overridden
    assert query(server, "SHOW synchronous_commit") == "off"  # the others stay

# In the C locale only ASCII letters fold. A new locale gets its own template,
# made once (about 1 s).
with PostgresServer(locale="C") as server:
    assert query(server, "SHOW lc_ctype") == "C"
    assert query(server, "SELECT 'Радиоточка' ILIKE '%радиоточка%'") is False
