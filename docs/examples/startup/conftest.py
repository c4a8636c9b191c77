import httpx
import pytest
from inventory import app, lifespan


@pytest.fixture
async def client(in_transaction, monkeypatch):
    # As on a machine where the real database's URL is set: start-up must not
    # use it under the tests.
    monkeypatch.setenv("DATABASE_URL", "postgresql://shop:secret@db.example.com/shop")
    transport = httpx.ASGITransport(app=app)  # it does not run the lifespan
    async with (
        lifespan(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        yield client
