import pytest
from aiohttp.test_utils import TestClient, TestServer
from guestbook import make_app


@pytest.fixture
async def client(in_transaction):
    # A server on the test's event loop, in this process: the handlers' queries
    # go through the patched database, into the test transaction. Not started
    # yet: a test starts and stops it with `async with client:`, so that the
    # server's connections end before the test does.
    client = TestClient(TestServer(make_app()))
    yield client
    await client.close()
