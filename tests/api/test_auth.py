from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.api.conftest import Tenant, assert_error
from voxline.app_state import AppState
from voxline.store.api_keys import authenticate, revoke_api_key


async def test_missing_key_is_401_with_a_bearer_challenge(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/v1/agents")
    assert_error(response, 401, "authentication_error")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_unknown_key_is_401(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get(
        "/v1/agents", headers={"Authorization": "Bearer vx_live_" + "x" * 43}
    )
    assert_error(response, 401, "authentication_error")
    assert "Invalid API key" in response.json()["error"]["message"]


async def test_non_bearer_scheme_is_401(anonymous: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await anonymous.get("/v1/agents", headers={"Authorization": f"Basic {tenant.key}"})
    assert_error(response, 401, "authentication_error")


async def test_revoked_key_is_401(app: FastAPI, tenant: Tenant) -> None:
    state: AppState = app.state.voxline
    async with state.database.transaction() as db:
        key = await authenticate(db, tenant.key)
        await revoke_api_key(db, key.id)
    response = await tenant.client.get("/v1/agents")
    assert_error(response, 401, "authentication_error")
    assert "revoked" in response.json()["error"]["message"]


async def test_error_message_never_echoes_the_key(anonymous: httpx.AsyncClient) -> None:
    secret = "vx_live_" + "s" * 43
    response = await anonymous.get("/v1/agents", headers={"Authorization": f"Bearer {secret}"})
    assert secret not in response.text


async def test_valid_key_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/agents")
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/agents"),
        ("GET", "/v1/agents"),
        ("GET", "/v1/agents/agent_x"),
        ("PATCH", "/v1/agents/agent_x"),
        ("DELETE", "/v1/agents/agent_x"),
        ("POST", "/v1/instances"),
        ("GET", "/v1/instances"),
        ("GET", "/v1/instances/inst_x"),
        ("PATCH", "/v1/instances/inst_x"),
        ("DELETE", "/v1/instances/inst_x"),
    ],
)
async def test_every_agent_and_instance_endpoint_requires_a_key(
    anonymous: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await anonymous.request(method, path, json={})
    assert_error(response, 401, "authentication_error")
