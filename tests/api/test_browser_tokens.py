"""Browser session tokens over HTTP: the API-key endpoint and the development endpoints."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.api.conftest import Tenant, assert_error, make_settings
from tests.e2e.server import scripted_agent
from voxline.agent_spec import AgentSpec
from voxline.api.app import create_app
from voxline.app_state import AppState
from voxline.security.session_token import verify_session_token
from voxline.store.agents import create_agent
from voxline.store.workspaces import create_workspace


async def _agent(client: httpx.AsyncClient) -> str:
    response = await client.post("/v1/agents", json=scripted_agent())
    assert response.status_code == 201, response.text
    agent_id: str = response.json()["id"]
    return agent_id


async def _instance(client: httpx.AsyncClient, agent_id: str) -> str:
    response = await client.post("/v1/instances", json={"agentId": agent_id})
    assert response.status_code == 201, response.text
    instance_id: str = response.json()["id"]
    return instance_id


def _secret(app: FastAPI) -> bytes:
    state: AppState = app.state.voxline
    return state.secret


async def test_session_token_needs_an_api_key(
    anonymous: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    agent_id = await _agent(client)
    response = await anonymous.post(f"/v1/agents/{agent_id}/session-token")
    assert_error(response, 401, "authentication_error")


async def test_session_token_grants_one_session_with_the_agent(
    app: FastAPI, tenant: Tenant
) -> None:
    agent_id = await _agent(tenant.client)
    response = await tenant.client.post(f"/v1/agents/{agent_id}/session-token")
    assert response.status_code == 200, response.text
    body = response.json()
    grant = verify_session_token(_secret(app), body["token"])
    assert (grant.agent_id, grant.workspace_id) == (agent_id, tenant.workspace_id)
    assert grant.instance_id is None
    expires_at = datetime.fromisoformat(body["expiresAt"])
    assert expires_at == grant.expires_at
    assert timedelta(seconds=55) < expires_at - datetime.now(UTC) <= timedelta(seconds=60)
    assert body["url"] == (
        f"ws://127.0.0.1:8000/v1/agents/{agent_id}/session?token={body['token']}"
    )


async def test_session_token_carries_instance_and_variables(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    agent_id = await _agent(client)
    instance_id = await _instance(client, agent_id)
    response = await client.post(
        f"/v1/agents/{agent_id}/session-token",
        json={"instanceId": instance_id, "variables": {"name": "Ada"}},
    )
    assert response.status_code == 200, response.text
    grant = verify_session_token(_secret(app), response.json()["token"])
    assert grant.instance_id == instance_id
    assert dict(grant.variables) == {"name": "Ada"}


async def test_session_token_for_another_workspaces_agent_is_not_found(
    client: httpx.AsyncClient, other_tenant: Tenant
) -> None:
    agent_id = await _agent(client)
    response = await other_tenant.client.post(f"/v1/agents/{agent_id}/session-token")
    assert_error(response, 404, "not_found_error")


async def test_session_token_for_another_agents_instance_is_not_found(
    client: httpx.AsyncClient,
) -> None:
    agent_id = await _agent(client)
    other_instance = await _instance(client, await _agent(client))
    response = await client.post(
        f"/v1/agents/{agent_id}/session-token", json={"instanceId": other_instance}
    )
    assert_error(response, 404, "not_found_error", "instanceId")


async def test_session_token_rejects_bad_variable_names(client: httpx.AsyncClient) -> None:
    agent_id = await _agent(client)
    response = await client.post(
        f"/v1/agents/{agent_id}/session-token", json={"variables": {"not a name": "x"}}
    )
    assert response.status_code == 422, response.text


async def test_session_token_rejects_variables_too_long_for_a_url(
    client: httpx.AsyncClient,
) -> None:
    agent_id = await _agent(client)
    variables = {f"v{index}": "x" * 500 for index in range(10)}
    response = await client.post(
        f"/v1/agents/{agent_id}/session-token", json={"variables": variables}
    )
    assert_error(response, 422, "validation_error", "variables")


# --- development mode ----------------------------------------------------------------------


@pytest.fixture
async def dev_app(database_url: str, tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = make_settings(database_url, tmp_path).model_copy(update={"dev_mode": True})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


def _dev_client(
    app: FastAPI, *, client_host: str = "127.0.0.1", base_url: str = "http://127.0.0.1:8000"
) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(client_host, 50000))
    return httpx.AsyncClient(transport=transport, base_url=base_url)


async def _dev_agent(app: FastAPI) -> str:
    state: AppState = app.state.voxline
    async with state.database.transaction() as db:
        workspace = await create_workspace(db, f"dev-{uuid.uuid4().hex[:12]}")
        row = await create_agent(db, workspace.id, AgentSpec.model_validate(scripted_agent()))
        return row.id


async def test_dev_endpoints_are_off_unless_dev_mode(anonymous: httpx.AsyncClient) -> None:
    listed = await anonymous.get("/v1/dev/agents")
    token = await anonymous.post("/v1/dev/session-token", json={"agentId": "agent_x"})
    assert_error(listed, 404, "not_found_error")
    assert_error(token, 404, "not_found_error")


async def test_dev_agents_lists_every_agent_to_a_loopback_client(dev_app: FastAPI) -> None:
    agent_id = await _dev_agent(dev_app)
    async with _dev_client(dev_app) as client:
        response = await client.get("/v1/dev/agents")
    assert response.status_code == 200, response.text
    assert {"id": agent_id, "name": "E2E receptionist"} in response.json()["data"]


async def test_dev_session_token_needs_no_api_key_on_loopback(dev_app: FastAPI) -> None:
    agent_id = await _dev_agent(dev_app)
    async with _dev_client(dev_app) as client:
        response = await client.post("/v1/dev/session-token", json={"agentId": agent_id})
    assert response.status_code == 200, response.text
    grant = verify_session_token(_secret(dev_app), response.json()["token"])
    assert grant.agent_id == agent_id


async def test_dev_session_token_for_an_unknown_agent_is_not_found(dev_app: FastAPI) -> None:
    async with _dev_client(dev_app) as client:
        response = await client.post("/v1/dev/session-token", json={"agentId": "agent_nope"})
    assert_error(response, 404, "not_found_error", "agentId")


@pytest.mark.parametrize(
    ("client_host", "base_url", "headers"),
    [
        ("203.0.113.7", "http://127.0.0.1:8000", {}),
        ("127.0.0.1", "http://rebound.example:8000", {}),
        ("127.0.0.1", "http://127.0.0.1:8000", {"Origin": "https://evil.example"}),
    ],
    ids=["remote-client", "foreign-host-name", "foreign-origin"],
)
async def test_dev_endpoints_refuse_anything_but_this_machine(
    dev_app: FastAPI, client_host: str, base_url: str, headers: dict[str, Any]
) -> None:
    agent_id = await _dev_agent(dev_app)
    async with _dev_client(dev_app, client_host=client_host, base_url=base_url) as client:
        listed = await client.get("/v1/dev/agents", headers=headers)
        token = await client.post(
            "/v1/dev/session-token", json={"agentId": agent_id}, headers=headers
        )
    assert listed.status_code == 403, listed.text
    assert token.status_code == 403, token.text


async def test_dev_endpoints_accept_the_servers_own_page_origin(dev_app: FastAPI) -> None:
    async with _dev_client(dev_app, base_url="http://localhost:8000") as client:
        response = await client.get("/v1/dev/agents", headers={"Origin": "http://localhost:8000"})
    assert response.status_code == 200, response.text
