from __future__ import annotations

import httpx

from tests.api.conftest import assert_error


async def _create_agents(client: httpx.AsyncClient, count: int) -> list[str]:
    ids = []
    for i in range(count):
        response = await client.post("/v1/agents", json={"name": f"agent {i}"})
        ids.append(response.json()["id"])
    return ids


async def test_list_pages_through_everything_newest_first(client: httpx.AsyncClient) -> None:
    created = await _create_agents(client, 5)
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 2}
    while True:
        body = (await client.get("/v1/agents", params=params)).json()
        assert set(body) == {"data", "hasMore", "nextCursor"}
        seen.extend(agent["id"] for agent in body["data"])
        if not body["hasMore"]:
            assert body["nextCursor"] is None
            break
        params = {"limit": 2, "after": body["nextCursor"]}
    assert seen == list(reversed(created))


async def test_default_page_holds_twenty(client: httpx.AsyncClient) -> None:
    await _create_agents(client, 21)
    body = (await client.get("/v1/agents")).json()
    assert (len(body["data"]), body["hasMore"]) == (20, True)


async def test_limit_above_maximum_is_422_naming_limit(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/agents", params={"limit": 101})
    assert_error(response, 422, "validation_error", "limit")


async def test_malformed_cursor_is_400_naming_after(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/agents", params={"after": "inst_nope"})
    assert_error(response, 400, "invalid_request_error", "after")
