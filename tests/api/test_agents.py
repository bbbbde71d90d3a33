from __future__ import annotations

from typing import Any

import httpx

from tests.api.conftest import assert_error
from voxline.ids import is_valid_id

SCRIPTED = {
    "name": "Booking line",
    "systemPrompt": "You book tables for {{restaurant}}.",
    "firstMessage": "Hello!",
    "stt": {"provider": "scripted", "transcripts": ["a table for two"]},
    "llm": {"provider": "scripted", "firstTokenMs": 0},
    "tts": {"provider": "scripted"},
}


async def _create(client: httpx.AsyncClient, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await client.post("/v1/agents", json=body or SCRIPTED)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_create_returns_the_agent_in_camel_case_with_identity(
    client: httpx.AsyncClient,
) -> None:
    agent = await _create(client)
    assert is_valid_id(agent["id"], "agent")
    assert agent["workspaceId"].startswith("ws_")
    assert agent["systemPrompt"] == SCRIPTED["systemPrompt"]
    assert agent["llm"] == {
        "provider": "scripted",
        "rules": [],
        "defaultReply": "I see. Tell me more.",
        "firstTokenMs": 0,
        "tokensPerSecond": 50.0,
    }
    assert agent["turnTaking"]["interruptions"]["minSpeechMs"] == 250
    assert agent["createdAt"].endswith("Z")


async def test_create_with_only_a_name_uses_the_embedded_defaults(
    client: httpx.AsyncClient,
) -> None:
    agent = await _create(client, {"name": "Defaults"})
    assert (agent["stt"]["provider"], agent["llm"]["provider"], agent["tts"]["provider"]) == (
        "whisper",
        "llama_cpp",
        "piper",
    )


async def test_unknown_provider_is_422_naming_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/agents", json={**SCRIPTED, "llm": {"provider": "gpt-9"}})
    assert_error(response, 422, "validation_error", "llm.provider")
    assert "gpt-9" in response.json()["error"]["message"]


async def test_invalid_provider_option_is_422_naming_the_option(
    client: httpx.AsyncClient,
) -> None:
    body = {**SCRIPTED, "tts": {"provider": "scripted", "firstByteMs": -5}}
    response = await client.post("/v1/agents", json=body)
    assert_error(response, 422, "validation_error", "tts.firstByteMs")


async def test_unknown_option_is_422_naming_it(client: httpx.AsyncClient) -> None:
    body = {**SCRIPTED, "llm": {"provider": "scripted", "temprature": 1}}
    response = await client.post("/v1/agents", json=body)
    assert_error(response, 422, "validation_error", "llm.temprature")


async def test_missing_name_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/agents", json={"firstMessage": "hi"})
    assert_error(response, 422, "validation_error", "name")


async def test_invalid_tool_in_list_is_422_with_its_index(client: httpx.AsyncClient) -> None:
    body = {**SCRIPTED, "tools": [{"type": "end_call"}, {"type": "transfer_call", "number": "1"}]}
    response = await client.post("/v1/agents", json=body)
    assert_error(response, 422, "validation_error", "tools.1.number")


async def test_get_returns_the_created_agent(client: httpx.AsyncClient) -> None:
    agent = await _create(client)
    response = await client.get(f"/v1/agents/{agent['id']}")
    assert response.status_code == 200
    assert response.json() == agent


async def test_get_unknown_agent_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/agents/agent_00000000000000000000000000")
    assert_error(response, 404, "not_found_error")


async def test_patch_changes_only_the_given_fields(client: httpx.AsyncClient) -> None:
    agent = await _create(client)
    response = await client.patch(
        f"/v1/agents/{agent['id']}", json={"firstMessage": "Welcome back!"}
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["firstMessage"] == "Welcome back!"
    assert patched["systemPrompt"] == agent["systemPrompt"]
    assert patched["llm"] == agent["llm"]
    assert patched["updatedAt"] >= agent["updatedAt"]


async def test_patch_replaces_a_nested_object_whole(client: httpx.AsyncClient) -> None:
    agent = await _create(client, {**SCRIPTED, "llm": {"provider": "scripted", "firstTokenMs": 7}})
    response = await client.patch(
        f"/v1/agents/{agent['id']}", json={"llm": {"provider": "scripted", "defaultReply": "OK"}}
    )
    assert response.status_code == 200
    assert response.json()["llm"]["firstTokenMs"] == 250
    assert response.json()["llm"]["defaultReply"] == "OK"


async def test_patch_switching_provider_is_validated_as_the_new_provider(
    client: httpx.AsyncClient,
) -> None:
    agent = await _create(client)
    response = await client.patch(
        f"/v1/agents/{agent['id']}", json={"llm": {"provider": "llama_cpp", "firstTokenMs": 1}}
    )
    assert_error(response, 422, "validation_error", "llm.firstTokenMs")


async def test_patch_that_breaks_the_whole_spec_is_422_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    agent = await _create(client, {**SCRIPTED, "tools": [{"type": "end_call"}]})
    response = await client.patch(
        f"/v1/agents/{agent['id']}",
        json={"tools": [{"type": "end_call"}, {"type": "end_call"}], "firstMessage": "changed"},
    )
    assert_error(response, 422, "validation_error", "tools")
    assert (await client.get(f"/v1/agents/{agent['id']}")).json() == agent


async def test_patch_null_on_a_required_field_is_422(client: httpx.AsyncClient) -> None:
    agent = await _create(client)
    response = await client.patch(f"/v1/agents/{agent['id']}", json={"name": None})
    assert_error(response, 422, "validation_error", "name")


async def test_patch_null_clears_a_nullable_field(client: httpx.AsyncClient) -> None:
    agent = await _create(client)
    response = await client.patch(f"/v1/agents/{agent['id']}", json={"firstMessage": None})
    assert response.status_code == 200
    assert response.json()["firstMessage"] is None


async def test_patch_with_an_unknown_field_is_422(client: httpx.AsyncClient) -> None:
    agent = await _create(client)
    response = await client.patch(f"/v1/agents/{agent['id']}", json={"colour": "blue"})
    assert_error(response, 422, "validation_error", "colour")


async def test_delete_then_get_is_404(client: httpx.AsyncClient) -> None:
    agent = await _create(client)
    response = await client.delete(f"/v1/agents/{agent['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert_error(await client.get(f"/v1/agents/{agent['id']}"), 404, "not_found_error")


async def test_delete_agent_with_instances_is_409(client: httpx.AsyncClient) -> None:
    agent = await _create(client)
    created = await client.post("/v1/instances", json={"agentId": agent["id"]})
    assert created.status_code == 201
    response = await client.delete(f"/v1/agents/{agent['id']}")
    assert_error(response, 409, "conflict_error")
    assert (await client.get(f"/v1/agents/{agent['id']}")).status_code == 200
