"""/v1/debug/runtime: event-loop lag, only when the server runs with the monitor on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.api.conftest import Tenant, _tenant, assert_error, make_settings
from voxline.api.app import create_app


async def test_runtime_stats_are_404_when_the_monitor_is_off(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/debug/runtime")
    assert_error(response, 404, "not_found_error")
    assert "VOXLINE_LAG_MONITOR" in response.json()["error"]["message"]


async def test_runtime_stats_report_loop_lag_since_a_given_clock(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path).model_copy(update={"lag_monitor": True})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        tenant: Tenant
        async for tenant in _tenant(app):
            first = (await tenant.client.get("/v1/debug/runtime")).json()
            await asyncio.sleep(0.1)
            response = await tenant.client.get(
                "/v1/debug/runtime", params={"since": first["clockS"]}
            )
    body = response.json()
    assert response.status_code == 200
    assert body["activeCalls"] == 0
    assert body["loopLag"]["samples"] > 0
    assert body["loopLag"]["sinceS"] >= first["clockS"]
    assert body["loopLag"]["p99Ms"] is not None
