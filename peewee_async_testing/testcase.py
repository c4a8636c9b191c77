"""AioDatabaseTestCase: Django's TestCase for unittest users of peewee-async."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any, ClassVar

from ._compat import OneLoopTestCase, one_loop_problem
from ._database import SUPPORTED, resolve_database
from .exceptions import ConfigurationError, DatabaseArgumentError
from .options import CASE_OPTIONS
from .pools import pool_on_running_loop
from .transaction import TransactionTestCase


class AioDatabaseTestCase(OneLoopTestCase):
    """An ``IsolatedAsyncioTestCase`` whose every test runs in a rolled-back transaction.

    Set ``database`` on the class (and, if wanted, the :class:`TransactionTestCase` options
    ``allow_transactions``, ``autosavepoint``, ``reset_sequences``). ``asyncSetUpTestData`` runs once
    per class, inside a transaction that the class's tests share through savepoints: its rows are seen
    by every test, and each test's changes are undone. The whole class is rolled back at its end.

    ``IsolatedAsyncioTestCase`` gives every test a new event loop, but the class's transaction holds a
    connection, and a connection belongs to one loop: so this class runs all its tests on one loop,
    made in ``setUpClass`` and closed in ``tearDownClass``, with a connection pool of its own, opened
    on that loop and closed with it. Needs Python 3.11 or later: on 3.10 the class's set-up fails with a
    :class:`ConfigurationError` that says so.

    Example::

        class TestLibrary(AioDatabaseTestCase):
            database = database

            @classmethod
            async def asyncSetUpTestData(cls):
                cls.author = await Author.aio_create(name="ada")

            async def test_books(self):
                await Book.aio_create(title="notes", author=self.author)
                assert await Book.select().aio_count() == 1
    """

    database: ClassVar[Any] = None
    allow_transactions: ClassVar[bool] = False
    autosavepoint: ClassVar[bool] = False
    reset_sequences: ClassVar[bool] = False

    _class_stack: ClassVar[AsyncExitStack | None] = None
    _class_case: ClassVar[TransactionTestCase | None] = None

    @classmethod
    async def asyncSetUpTestData(cls) -> None:
        """Make the data every test of the class sees; runs once, inside the class's transaction."""

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        problem = one_loop_problem()
        if problem is not None:
            raise ConfigurationError(
                f"AioDatabaseTestCase needs Python 3.11 to 3.13, and {problem}. Use TransactionTestCase in "
                "an IsolatedAsyncioTestCase's asyncSetUp instead, or the pytest plugin."
            )
        if cls.database is None:
            raise DatabaseArgumentError(
                f"{cls.__name__} needs a database: set `database = ...` on the class to {SUPPORTED}."
            )
        resolve_database(cls.database, purpose=f"{cls.__name__}.database")  # refused now, before a loop or connection
        cls._class_runner = asyncio.Runner(loop_factory=getattr(cls, "loop_factory", None))
        try:
            cls._class_runner.run(cls._open_class_transaction())
        except BaseException:
            cls._class_runner.close()
            cls._class_runner = None
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        runner, cls._class_runner = cls._class_runner, None
        stack, cls._class_stack, cls._class_case = cls._class_stack, None, None
        try:
            if runner is not None:
                try:
                    if stack is not None:
                        runner.run(stack.aclose())
                finally:
                    runner.close()
        finally:
            super().tearDownClass()

    @classmethod
    def _transaction(cls) -> TransactionTestCase:
        return TransactionTestCase(cls.database, **{name: getattr(cls, name) for name in CASE_OPTIONS})

    @classmethod
    async def _open_class_transaction(cls) -> None:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(pool_on_running_loop(resolve_database(cls.database, purpose=cls.__name__)))
            cls._class_case = await stack.enter_async_context(cls._transaction())
            await cls.asyncSetUpTestData()
            cls._class_stack = stack.pop_all()

    async def _asyncSetUpFirst(self) -> None:
        # Each test gets a context of its own, which does not know the class's case: so it is named.
        self.transaction = self._transaction()
        engine = self.transaction.engine(outer=type(self)._class_case)
        engine.patch()
        self.addAsyncCleanup(engine.close, None, None, None)
        await engine.connection()
