from __future__ import annotations

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
