import httpx
import pytest
from signups import app


@pytest.fixture
async def client(in_transaction):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
