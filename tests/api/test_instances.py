from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.api.conftest import assert_error
from voxline.ids import is_valid_id


@pytest.fixture
async def agent_id(client: httpx.AsyncClient) -> str:
    response = await client.post("/v1/agents", json={"name": "Reminders"})
    agent_id: str = response.json()["id"]
    return agent_id


async def _create(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/v1/instances", json=body)
    assert response.status_code == 201, response.text
    instance: dict[str, Any] = response.json()
    return instance


async def test_create_returns_the_instance_in_camel_case(
    client: httpx.AsyncClient, agent_id: str
) -> None:
    instance = await _create(
        client,
        {
            "agentId": agent_id,
            "externalRef": "patient-42",
            "variables": {"first_name": "Ada"},
            "memory": [
                {"text": "Allergic to penicillin", "createdAt": "2025-01-02T03:04:05+01:00"}
            ],
        },
    )
    assert is_valid_id(instance["id"], "inst")
    assert (instance["agentId"], instance["externalRef"]) == (agent_id, "patient-42")
    assert instance["variables"] == {"first_name": "Ada"}
    [note] = instance["memory"]
    assert is_valid_id(note.pop("id"), "note")
    assert note == {"text": "Allergic to penicillin", "createdAt": "2025-01-02T02:04:05Z"}
    assert instance["memoryEnabled"] is True


async def test_memory_note_without_date_is_dated_now(
    client: httpx.AsyncClient, agent_id: str
) -> None:
    instance = await _create(client, {"agentId": agent_id, "memory": [{"text": "Called twice"}]})
    dated = datetime.fromisoformat(instance["memory"][0]["createdAt"])
    created = datetime.fromisoformat(instance["createdAt"])
    # Dated as the request is read, a moment before the instance is stored.
    assert abs(created - dated) < timedelta(seconds=5)


async def test_duplicate_external_ref_for_the_agent_is_409(
    client: httpx.AsyncClient, agent_id: str
) -> None:
    await _create(client, {"agentId": agent_id, "externalRef": "crm-7"})
    response = await client.post(
        "/v1/instances", json={"agentId": agent_id, "externalRef": "crm-7"}
    )
    assert_error(response, 409, "conflict_error", "externalRef")


async def test_variable_name_must_be_a_placeholder_name(
    client: httpx.AsyncClient, agent_id: str
) -> None:
    response = await client.post(
        "/v1/instances", json={"agentId": agent_id, "variables": {"first name": "Ada"}}
    )
    assert_error(response, 422, "validation_error", "variables.first name")


async def test_variable_values_must_be_strings(client: httpx.AsyncClient, agent_id: str) -> None:
    response = await client.post(
        "/v1/instances", json={"agentId": agent_id, "variables": {"age": 42}}
    )
    assert_error(response, 422, "validation_error", "variables.age")


async def test_unknown_agent_is_404_naming_agent_id(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/instances", json={"agentId": "agent_00000000000000000000000000"}
    )
    assert_error(response, 404, "not_found_error", "agentId")


async def test_list_filters_by_agent_id(client: httpx.AsyncClient, agent_id: str) -> None:
    other = (await client.post("/v1/agents", json={"name": "Other"})).json()["id"]
    mine = await _create(client, {"agentId": agent_id})
    await _create(client, {"agentId": other})
    filtered = (await client.get("/v1/instances", params={"agentId": agent_id})).json()
    assert [item["id"] for item in filtered["data"]] == [mine["id"]]
    everything = (await client.get("/v1/instances")).json()
    assert len(everything["data"]) == 2


async def test_patch_replaces_given_fields_and_keeps_the_rest(
    client: httpx.AsyncClient, agent_id: str
) -> None:
    instance = await _create(
        client,
        {
            "agentId": agent_id,
            "externalRef": "r1",
            "variables": {"a": "1"},
            "memory": [{"text": "x"}],
        },
    )
    response = await client.patch(f"/v1/instances/{instance['id']}", json={"variables": {"b": "2"}})
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["variables"] == {"b": "2"}
    assert (patched["externalRef"], patched["memory"]) == ("r1", instance["memory"])


async def test_memory_can_be_turned_off_and_on(client: httpx.AsyncClient, agent_id: str) -> None:
    instance = await _create(client, {"agentId": agent_id, "memoryEnabled": False})
    assert instance["memoryEnabled"] is False
    response = await client.patch(f"/v1/instances/{instance['id']}", json={"variables": {}})
    assert response.json()["memoryEnabled"] is False
    response = await client.patch(f"/v1/instances/{instance['id']}", json={"memoryEnabled": True})
    assert response.json()["memoryEnabled"] is True


async def test_a_memory_note_is_removed_by_its_id(client: httpx.AsyncClient, agent_id: str) -> None:
    instance = await _create(
        client, {"agentId": agent_id, "memory": [{"text": "old"}, {"text": "new"}]}
    )
    old, new = instance["memory"]
    path = f"/v1/instances/{instance['id']}/memory/{old['id']}"
    response = await client.delete(path)
    assert response.status_code == 204, response.text
    after = (await client.get(f"/v1/instances/{instance['id']}")).json()
    assert after["memory"] == [new]
    assert_error(await client.delete(path), 404, "not_found_error")


async def test_another_workspace_cannot_remove_a_memory_note(
    client: httpx.AsyncClient, other_tenant: Any, agent_id: str
) -> None:
    instance = await _create(client, {"agentId": agent_id, "memory": [{"text": "mine"}]})
    note_id = instance["memory"][0]["id"]
    response = await other_tenant.client.delete(f"/v1/instances/{instance['id']}/memory/{note_id}")
    assert_error(response, 404, "not_found_error")
    after = (await client.get(f"/v1/instances/{instance['id']}")).json()
    assert [note["id"] for note in after["memory"]] == [note_id]


async def test_patch_null_external_ref_removes_it(client: httpx.AsyncClient, agent_id: str) -> None:
    instance = await _create(client, {"agentId": agent_id, "externalRef": "r1"})
    response = await client.patch(f"/v1/instances/{instance['id']}", json={"externalRef": None})
    assert response.json()["externalRef"] is None


async def test_patch_null_variables_is_422(client: httpx.AsyncClient, agent_id: str) -> None:
    instance = await _create(client, {"agentId": agent_id})
    response = await client.patch(f"/v1/instances/{instance['id']}", json={"variables": None})
    assert_error(response, 422, "validation_error", "variables")


async def test_patch_cannot_move_an_instance_to_another_agent(
    client: httpx.AsyncClient, agent_id: str
) -> None:
    instance = await _create(client, {"agentId": agent_id})
    response = await client.patch(f"/v1/instances/{instance['id']}", json={"agentId": agent_id})
    assert_error(response, 422, "validation_error", "agentId")


async def test_delete_then_get_is_404(client: httpx.AsyncClient, agent_id: str) -> None:
    instance = await _create(client, {"agentId": agent_id})
    assert (await client.delete(f"/v1/instances/{instance['id']}")).status_code == 204
    response = await client.get(f"/v1/instances/{instance['id']}")
    assert_error(response, 404, "not_found_error")


async def test_deleting_the_last_instance_frees_the_agent_for_deletion(
    client: httpx.AsyncClient, agent_id: str
) -> None:
    instance = await _create(client, {"agentId": agent_id})
    await client.delete(f"/v1/instances/{instance['id']}")
    assert (await client.delete(f"/v1/agents/{agent_id}")).status_code == 204


async def test_memory_dates_are_iso_strings_not_numbers(
    client: httpx.AsyncClient, agent_id: str
) -> None:
    response = await client.post(
        "/v1/instances", json={"agentId": agent_id, "memory": [{"text": "x", "createdAt": 0}]}
    )
    assert_error(response, 422, "validation_error", "memory.0.createdAt")
