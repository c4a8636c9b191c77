import asyncio

import peewee_async

from peewee_async_testing import MariaDBServer

with MariaDBServer() as server:
    # An administration connection (PyMySQL, autocommit), as the superuser root...
    connection = server.connect()
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@innodb_flush_log_at_trx_commit, @@log_bin")
        assert cursor.fetchone() == (0, 0)  # tuned for tests
        cursor.execute("CREATE DATABASE test_app")
    connection.close()

    # ...and a peewee-async database on the database of your choice.
    database = peewee_async.MySQLDatabase(**server.connect_params("test_app"))

    async def main() -> None:
        (answer,) = await database.aio_execute_sql(
            "SELECT 6 * 7", fetch_results=peewee_async.databases.fetchone
        )
        assert answer == 42
        await database.aio_close()

    asyncio.run(main())
    print(server.dsn)  # mysql://root@127.0.0.1:PORT/
# Here mariadbd is stopped and its folder removed
# (unless PEEWEE_ASYNC_TESTING_MYSQL_DSN named a server of yours).
