import httpx
import pytest
from notes import app


@pytest.fixture
async def client(in_transaction):
    # ASGITransport calls the app in the test's own task and event loop: the
    # handlers' queries run inside the test transaction.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
