from collections.abc import AsyncIterator

import httpx
import pytest

from tests.fakes.webhook_server import WebhookServer

SECRET = b"test-signing-secret"
SESSION_ID = "sess_test123"


@pytest.fixture
async def webhook_server() -> AsyncIterator[WebhookServer]:
    async with WebhookServer(SECRET) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture(autouse=True)
def _local_fakes(loopback_egress: None) -> None:
    """The fakes here listen on 127.0.0.1."""
