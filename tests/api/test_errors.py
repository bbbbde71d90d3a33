from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from tests.api.conftest import assert_error


async def test_unknown_route_is_404_in_the_error_shape(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/v1/nothing-here")
    assert_error(response, 404, "not_found_error")
    assert "/v1/nothing-here" in response.json()["error"]["message"]


async def test_wrong_method_is_405_in_the_error_shape(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.put("/health")
    assert_error(response, 405, "invalid_request_error")


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/agents", content=b'{"name": ', headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, "invalid_request_error")


async def test_body_that_is_not_an_object_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/agents", json=["not", "an", "agent"])
    assert_error(response, 422, "validation_error")


async def test_several_problems_are_all_listed(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/agents", json={"name": "", "language": "english", "turnTaking": {"vadThreshold": 3}}
    )
    assert_error(response, 422, "validation_error", "name")
    message = response.json()["error"]["message"]
    assert "language" in message and "turnTaking.vadThreshold" in message


async def test_405_allows_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    response = await client.put("/v1/agents")
    assert_error(response, 405, "invalid_request_error")
    assert response.headers["allow"] == "GET, POST"


async def test_a_body_over_the_limit_is_413_before_it_is_read(client: httpx.AsyncClient) -> None:
    big = {"name": "x", "systemPrompt": "y" * (1024 * 1024)}
    response = await client.post("/v1/agents", json=big)
    assert_error(response, 413, "invalid_request_error")
    assert "1048576 bytes" in response.json()["error"]["message"]


async def test_a_streamed_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "x", "systemPrompt": "'
        for _ in range(40):
            yield b"y" * 32_768
        yield b'"}'

    response = await client.post(
        "/v1/agents", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_error(response, 413, "invalid_request_error")


async def test_errors_quote_only_a_short_prefix_of_the_input(client: httpx.AsyncClient) -> None:
    agent_id = "agent_" + "x" * 500_000
    response = await client.post("/v1/instances", json={"agentId": agent_id})
    assert_error(response, 404, "not_found_error", "agentId")
    assert len(response.content) < 1000
    cursor = await client.get("/v1/agents", params={"after": "y" * 5000})
    assert_error(cursor, 400, "invalid_request_error", "after")
    assert len(cursor.content) < 1000


async def test_unknown_fields_are_named_by_a_short_prefix(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/agents", json={"name": "x", "k" * 100_000: 1})
    assert response.status_code == 422
    assert len(response.content) < 2000


async def test_an_unsigned_twilio_webhook_is_403_permission_error(
    anonymous: httpx.AsyncClient,
) -> None:
    response = await anonymous.post("/v1/sessions/twilio?agentId=agent_x", data={"CallSid": "CA1"})
    assert_error(response, 403, "permission_error")
