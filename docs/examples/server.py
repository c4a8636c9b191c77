import asyncio

import peewee_async
import psycopg2

from peewee_async_testing import PostgresServer

with PostgresServer() as server:
    # Any client can connect: through the URL...
    connection = psycopg2.connect(server.dsn)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("SHOW fsync")
        assert cursor.fetchone() == ("off",)  # tuned for tests
        cursor.execute("CREATE DATABASE test_app")
    connection.close()

    # ...or as a peewee-async database, on a database of your choice.
    database = peewee_async.PostgresqlDatabase(**server.connect_params("test_app"))

    async def main() -> None:
        (answer,) = await database.aio_execute_sql(
            "SELECT 6 * 7", fetch_results=peewee_async.databases.fetchone
        )
        assert answer == 42
        await database.aio_close()

    asyncio.run(main())

    connection = psycopg2.connect(server.dsn)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("DROP DATABASE test_app")
    connection.close()
# Here the server is stopped and its folder removed
# (unless PEEWEE_ASYNC_TESTING_DSN named a server of yours).
