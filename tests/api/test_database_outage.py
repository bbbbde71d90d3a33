"""During a database outage the API answers 503 unavailable_error with Retry-After (never a
500), and /ready says the database is unreachable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.api.conftest import _tenant, assert_error, make_settings
from tests.helpers.outages import Outage, outage_of
from voxline.api.app import create_app
from voxline.app_state import AppState


@pytest.fixture(params=["sqlite", "postgresql"])
async def outage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Outage]:
    async with outage_of(request.param, tmp_path) as outage:
        yield outage


async def test_requests_during_an_outage_answer_503_with_retry_after(
    outage: Outage, tmp_path: Path
) -> None:
    app = create_app(make_settings(outage.url, tmp_path / "data"))
    async with app.router.lifespan_context(app):
        state: AppState = app.state.voxline
        async for tenant in _tenant(app):
            await outage.begin(state.database)
            try:
                created = await tenant.client.post("/v1/agents", json={"name": "During"})
                listed = await tenant.client.get("/v1/agents")
                ready = await tenant.client.get("/ready")
            finally:
                await outage.end()
            after = await tenant.client.get("/v1/agents")

    for response in (created, listed):
        assert_error(response, 503, "unavailable_error")
        assert response.headers["retry-after"] == "5"
    if outage.url.startswith("postgresql"):
        assert_error(ready, 503, "unavailable_error")
        assert "unreachable" in ready.json()["error"]["message"]
    assert after.status_code == 200
