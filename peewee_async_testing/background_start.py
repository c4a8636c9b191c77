"""A throwaway server started in a thread, so that it gets ready while the caller does other work.

The pytest plugin starts the session's server this way as the session starts: it gets ready while
pytest collects the tests (and, under pytest-xdist, while the workers start).
"""

from __future__ import annotations

import threading
from typing import Any


class BackgroundStart:
    """``server`` (a :class:`~peewee_async_testing.PostgresServer` or
    :class:`~peewee_async_testing.MariaDBServer`, not started), starting in a thread from the moment this is
    made; :meth:`result` waits for it."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._start, name="peewee-async-testing server", daemon=True)
        self._thread.start()

    def _start(self) -> None:
        try:
            self.server.start()
        except BaseException as error:  # handed to whoever needs the server
            self._error = error

    def result(self) -> Any:
        """The running server, once it is ready. :raises ServerError: why it could not start."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.server

    def stop(self) -> None:
        """Wait for the start to end, then stop the server and remove its folder."""
        self._thread.join()
        self.server.stop()
