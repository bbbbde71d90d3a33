"""GET /v1/sessions filters (agent, status, direction, channel, creation time) and DELETE."""

from __future__ import annotations

from datetime import timedelta

import httpx
from fastapi import FastAPI

from tests.api.conftest import Tenant
from voxline.app_state import AppState
from voxline.store import sessions as store
from voxline.store.session_state import Channel, Direction, SessionStatus
from voxline.store.types import utcnow


async def _session(app: FastAPI, tenant: Tenant, direction: Direction, channel: Channel) -> str:
    state: AppState = app.state.voxline
    async with state.database.transaction() as db:
        row = await store.create_session(
            db,
            workspace_id=tenant.workspace_id,
            agent_id="agent_x",
            channel=channel,
            direction=direction,
        )
        return row.id


async def _finish(app: FastAPI, session_id: str) -> None:
    state: AppState = app.state.voxline
    async with state.database.transaction() as db:
        await store.mark_in_progress(db, session_id)
        await store.finish(db, session_id, status=SessionStatus.COMPLETED, end_reason="done")


async def _ids(client: httpx.AsyncClient, **params: str) -> list[str]:
    response = await client.get("/v1/sessions", params=params)
    assert response.status_code == 200, response.text
    return [entry["id"] for entry in response.json()["data"]]


async def test_sessions_filter_by_direction_channel_status_and_time(
    app: FastAPI, tenant: Tenant
) -> None:
    inbound = await _session(app, tenant, Direction.INBOUND, Channel.PHONE)
    outbound = await _session(app, tenant, Direction.OUTBOUND, Channel.PHONE)
    web = await _session(app, tenant, Direction.INBOUND, Channel.WEB)
    await _finish(app, web)
    client = tenant.client

    assert await _ids(client, direction="outbound") == [outbound]
    assert await _ids(client, channel="web") == [web]
    assert await _ids(client, status="completed") == [web]
    assert await _ids(client, direction="inbound", channel="phone") == [inbound]
    later = (utcnow() + timedelta(minutes=1)).isoformat()
    earlier = (utcnow() - timedelta(minutes=1)).isoformat()
    assert await _ids(client, createdAfter=later) == []
    assert sorted(await _ids(client, createdAfter=earlier, createdBefore=later)) == sorted(
        [inbound, outbound, web]
    )
    bad = await client.get("/v1/sessions", params={"direction": "sideways"})
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "direction"


async def test_a_finished_session_is_deleted_a_live_one_is_not(
    app: FastAPI, tenant: Tenant, other_tenant: Tenant
) -> None:
    live = await _session(app, tenant, Direction.INBOUND, Channel.PHONE)
    done = await _session(app, tenant, Direction.INBOUND, Channel.PHONE)
    await _finish(app, done)

    assert (await tenant.client.delete(f"/v1/sessions/{live}")).status_code == 409
    assert (await other_tenant.client.delete(f"/v1/sessions/{done}")).status_code == 404
    assert (await tenant.client.delete(f"/v1/sessions/{done}")).status_code == 204
    assert (await tenant.client.get(f"/v1/sessions/{done}")).status_code == 404
    assert await _ids(tenant.client) == [live]
