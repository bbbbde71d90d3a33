"""A key never sees another workspace's resources: they answer 404, exactly like missing ones."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.conftest import Tenant, assert_error


async def _agent(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.post("/v1/agents", json={"name": "Private"})
    assert response.status_code == 201
    agent: dict[str, Any] = response.json()
    return agent


async def _instance(client: httpx.AsyncClient, agent_id: str) -> dict[str, Any]:
    response = await client.post("/v1/instances", json={"agentId": agent_id})
    assert response.status_code == 201
    instance: dict[str, Any] = response.json()
    return instance


async def test_get_agent_of_another_workspace_is_404(tenant: Tenant, other_tenant: Tenant) -> None:
    agent = await _agent(tenant.client)
    assert_error(await other_tenant.client.get(f"/v1/agents/{agent['id']}"), 404, "not_found_error")


async def test_patch_agent_of_another_workspace_is_404_and_changes_nothing(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    agent = await _agent(tenant.client)
    response = await other_tenant.client.patch(f"/v1/agents/{agent['id']}", json={"name": "Mine"})
    assert_error(response, 404, "not_found_error")
    assert (await tenant.client.get(f"/v1/agents/{agent['id']}")).json()["name"] == "Private"


async def test_delete_agent_of_another_workspace_is_404_and_deletes_nothing(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    agent = await _agent(tenant.client)
    assert_error(
        await other_tenant.client.delete(f"/v1/agents/{agent['id']}"), 404, "not_found_error"
    )
    assert (await tenant.client.get(f"/v1/agents/{agent['id']}")).status_code == 200


async def test_agent_list_shows_only_the_own_workspace(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    mine = await _agent(tenant.client)
    theirs = await _agent(other_tenant.client)
    listed = (await tenant.client.get("/v1/agents")).json()["data"]
    assert [agent["id"] for agent in listed] == [mine["id"]]
    assert theirs["id"] not in {agent["id"] for agent in listed}


async def test_instance_of_another_workspace_is_404_for_get_patch_delete(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    instance = await _instance(tenant.client, (await _agent(tenant.client))["id"])
    url = f"/v1/instances/{instance['id']}"
    assert_error(await other_tenant.client.get(url), 404, "not_found_error")
    assert_error(
        await other_tenant.client.patch(url, json={"variables": {"a": "b"}}), 404, "not_found_error"
    )
    assert_error(await other_tenant.client.delete(url), 404, "not_found_error")
    assert (await tenant.client.get(url)).json() == instance


async def test_instance_list_shows_only_the_own_workspace(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    agent = await _agent(tenant.client)
    await _instance(tenant.client, agent["id"])
    listed = await other_tenant.client.get("/v1/instances", params={"agentId": agent["id"]})
    assert listed.json()["data"] == []
    assert (await other_tenant.client.get("/v1/instances")).json()["data"] == []


async def test_instance_for_another_workspaces_agent_is_404_naming_agent_id(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    agent = await _agent(tenant.client)
    response = await other_tenant.client.post("/v1/instances", json={"agentId": agent["id"]})
    assert_error(response, 404, "not_found_error", "agentId")
