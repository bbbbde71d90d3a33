"""Saving an agent whose URLs point at internal addresses is a 422 naming the field."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import Tenant, _tenant, assert_error, make_settings
from voxline.api.app import create_app
from voxline.security import egress

SCRIPTED = {
    "name": "Egress",
    "stt": {"provider": "scripted", "transcripts": ["hello"]},
    "llm": {"provider": "scripted"},
    "tts": {"provider": "scripted"},
}
OPENAI = {"provider": "openai", "model": "m", "apiKeyRef": None}


def webhook(url: str) -> dict[str, Any]:
    return {"type": "webhook", "name": "lookup", "description": "Look up.", "url": url}


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    records: dict[str, list[str]] = {}

    async def lookup(host: str, port: int) -> list[str]:
        if host not in records:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return records[host]

    monkeypatch.setattr(egress, "lookup", lookup)
    return records


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"tools": [{"type": "end_call"}, webhook("http://127.0.0.1:6379/")]}, "tools.1.url"),
        ({"webhookUrl": "http://169.254.169.254/latest/meta-data/"}, "webhookUrl"),
        ({"webhookUrl": "http://metadata.google.internal/"}, "webhookUrl"),
        ({"llm": {**OPENAI, "baseUrl": "http://2130706433:8080/v1"}}, "llm.baseUrl"),
        ({"llm": {**OPENAI, "baseUrl": "http://0x7f000001/v1"}}, "llm.baseUrl"),
        ({"llmFallbacks": [{**OPENAI, "baseUrl": "http://10.0.0.1/v1"}]}, "llmFallbacks.0.baseUrl"),
        ({"stt": {"provider": "deepgram", "baseUrl": "ws://[::1]:5432"}}, "stt.baseUrl"),
        (
            {
                "ttsFallbacks": [
                    {"provider": "cartesia", "voiceId": "v", "baseUrl": "wss://0.0.0.0"}
                ]
            },
            "ttsFallbacks.0.baseUrl",
        ),
        (
            {"tts": {"provider": "elevenlabs", "voiceId": "v", "baseUrl": "wss://[fe80::1]"}},
            "tts.baseUrl",
        ),
    ],
)
async def test_internal_urls_are_refused_on_create_naming_the_field(
    client: httpx.AsyncClient, changes: dict[str, Any], param: str
) -> None:
    response = await client.post("/v1/agents", json={**SCRIPTED, **changes})
    assert_error(response, 422, "validation_error", param)
    assert "VOXLINE_EGRESS_ALLOW" in response.json()["error"]["message"]


async def test_internal_urls_are_refused_on_update(client: httpx.AsyncClient) -> None:
    created = (await client.post("/v1/agents", json=SCRIPTED)).json()
    response = await client.patch(
        f"/v1/agents/{created['id']}", json={"llm": {**OPENAI, "baseUrl": "http://10.1.1.1/v1"}}
    )
    assert_error(response, 422, "validation_error", "llm.baseUrl")


async def test_a_name_resolving_to_a_private_address_is_refused(
    client: httpx.AsyncClient, dns: dict[str, list[str]]
) -> None:
    dns["hooks.corp.example"] = ["192.168.10.10"]
    response = await client.post(
        "/v1/agents", json={**SCRIPTED, "webhookUrl": "https://hooks.corp.example/end"}
    )
    assert_error(response, 422, "validation_error", "webhookUrl")


async def test_a_name_that_does_not_resolve_yet_is_saved(
    client: httpx.AsyncClient, dns: dict[str, list[str]]
) -> None:
    body = {**SCRIPTED, "tools": [webhook("https://later.example/hook")]}
    response = await client.post("/v1/agents", json=body)
    assert response.status_code == 201, response.text


@pytest.fixture(params=[{"egress_allow": ["127.0.0.0/8"]}, {"dev_mode": True}])
async def open_tenant(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> AsyncIterator[Tenant]:
    settings = make_settings(database_url, tmp_path).model_copy(update=request.param)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async for tenant in _tenant(app):
            yield tenant


async def test_allow_list_and_development_mode_open_loopback(open_tenant: Tenant) -> None:
    body = {
        **SCRIPTED,
        "llm": {**OPENAI, "baseUrl": "http://127.0.0.1:11434/v1"},
        "tools": [webhook("http://127.0.0.2:9000/hook")],
    }
    response = await open_tenant.client.post("/v1/agents", json=body)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("base_url", ["http://[", "http://host:99999/v1", "http:///v1"])
async def test_a_malformed_base_url_is_422_not_a_crash(
    client: httpx.AsyncClient, base_url: str
) -> None:
    response = await client.post(
        "/v1/agents", json={**SCRIPTED, "llm": {**OPENAI, "baseUrl": base_url}}
    )
    assert_error(response, 422, "validation_error", "llm.baseUrl")
