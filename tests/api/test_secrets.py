from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI

from tests.api.conftest import Tenant, assert_error
from voxline.app_state import AppState
from voxline.store.secrets import get_secret

VALUE = "sk-api-test-" + "q" * 32


async def _put(client: httpx.AsyncClient, name: str, value: str = VALUE) -> httpx.Response:
    return await client.put(f"/v1/secrets/{name}", json={"value": value})


async def _names(client: httpx.AsyncClient) -> list[str]:
    response = await client.get("/v1/secrets")
    assert response.status_code == 200, response.text
    return [secret["name"] for secret in response.json()["data"]]


async def test_put_creates_a_secret_and_answers_its_name_and_dates(
    client: httpx.AsyncClient,
) -> None:
    response = await _put(client, "openai")
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"name", "createdAt", "updatedAt"}
    assert body["name"] == "openai"


async def test_put_again_replaces_the_value_with_200(app: FastAPI, tenant: Tenant) -> None:
    await _put(tenant.client, "groq", "gsk-old")
    response = await _put(tenant.client, "groq", "gsk-new")
    assert response.status_code == 200, response.text
    state: AppState = app.state.voxline
    async with state.database.transaction() as db:
        value = await get_secret(db, state.engine.credentials.box, tenant.workspace_id, "groq")
    assert value == "gsk-new"


async def test_list_gives_names_and_dates_never_values(client: httpx.AsyncClient) -> None:
    await _put(client, "openai")
    await _put(client, "deepgram")
    response = await client.get("/v1/secrets")
    assert response.status_code == 200
    body = response.json()
    assert [secret["name"] for secret in body["data"]] == ["deepgram", "openai"]
    assert all(set(secret) == {"name", "createdAt", "updatedAt"} for secret in body["data"])
    assert VALUE not in response.text


async def test_list_pages_with_the_next_cursor(client: httpx.AsyncClient) -> None:
    for name in ("a-one", "b-two", "c-three"):
        await _put(client, name)
    first = (await client.get("/v1/secrets", params={"limit": 2})).json()
    assert (first["hasMore"], first["nextCursor"]) == (True, "b-two")
    second = await client.get("/v1/secrets", params={"limit": 2, "after": first["nextCursor"]})
    assert [secret["name"] for secret in second.json()["data"]] == ["c-three"]


async def test_a_malformed_cursor_is_400(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/secrets", params={"after": "not/a name"})
    assert_error(response, 400, "invalid_request_error", "after")


async def test_delete_removes_the_secret_with_204(client: httpx.AsyncClient) -> None:
    await _put(client, "openai")
    response = await client.delete("/v1/secrets/openai")
    assert response.status_code == 204
    assert await _names(client) == []


async def test_deleting_a_missing_secret_is_404(client: httpx.AsyncClient) -> None:
    assert_error(await client.delete("/v1/secrets/absent"), 404, "not_found_error")


async def test_another_workspaces_secrets_are_invisible(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    await _put(tenant.client, "openai")
    assert await _names(other_tenant.client) == []


async def test_deleting_another_workspaces_secret_is_404_and_deletes_nothing(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    await _put(tenant.client, "openai")
    assert_error(await other_tenant.client.delete("/v1/secrets/openai"), 404, "not_found_error")
    assert await _names(tenant.client) == ["openai"]


async def test_putting_the_same_name_in_another_workspace_creates_its_own(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    await _put(tenant.client, "openai")
    assert (await _put(other_tenant.client, "openai", "sk-other")).status_code == 201


async def test_an_invalid_name_is_422_naming_it(client: httpx.AsyncClient) -> None:
    assert_error(await _put(client, "-leading-dash"), 422, "validation_error", "name")


@pytest.mark.parametrize(
    "value", ["", "sk-with\nnewline", " sk-padded"], ids=["empty", "newline", "whitespace"]
)
async def test_an_unstorable_value_is_422_without_echoing_it(
    client: httpx.AsyncClient, value: str
) -> None:
    response = await _put(client, "openai", value)
    assert_error(response, 422, "validation_error", "value")
    if value:
        assert value.strip() not in response.text


async def test_a_missing_value_is_422(client: httpx.AsyncClient) -> None:
    response = await client.put("/v1/secrets/openai", json={})
    assert_error(response, 422, "validation_error", "value")


async def test_secrets_need_an_api_key(anonymous: httpx.AsyncClient) -> None:
    assert_error(await anonymous.get("/v1/secrets"), 401, "authentication_error")


async def test_no_response_or_log_line_contains_the_value(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    responses = [
        await _put(client, "openai"),
        await _put(client, "openai"),
        await client.get("/v1/secrets"),
        await _put(client, "-bad", VALUE),
        await client.put("/v1/secrets/openai", json={"value": VALUE, "extra": VALUE}),
        await client.delete("/v1/secrets/openai"),
    ]
    assert [response.status_code for response in responses] == [201, 200, 200, 422, 422, 204]
    assert all(VALUE not in response.text for response in responses)
    assert caplog.records, "nothing was captured: the check below would prove nothing"
    assert VALUE not in caplog.text


async def test_the_value_is_documented_as_write_only(anonymous: httpx.AsyncClient) -> None:
    schema = (await anonymous.get("/openapi.json")).json()
    value = schema["components"]["schemas"]["SecretValue"]["properties"]["value"]
    assert value["writeOnly"] is True
    assert "value" not in schema["components"]["schemas"]["Secret"]["properties"]
