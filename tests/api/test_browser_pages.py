"""The web client's pages and assets, served by voxline itself (no CDN, no build step)."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.parametrize("path", ["/", "/talk"])
async def test_web_client_page_is_served(anonymous: httpx.AsyncClient, path: str) -> None:
    response = await anonymous.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/web/app.js">' in response.text


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("app.js", "text/javascript"),
        ("audio-worklet.js", "text/javascript"),
        ("style.css", "text/css"),
    ],
)
async def test_web_assets_are_served_with_their_type(
    anonymous: httpx.AsyncClient, name: str, media_type: str
) -> None:
    response = await anonymous.get(f"/web/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)
    assert response.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("path", ["/web/index.html.bak", "/web/..%2Fconfig.py", "/web/"])
async def test_only_the_known_web_assets_are_served(
    anonymous: httpx.AsyncClient, path: str
) -> None:
    response = await anonymous.get(path)
    assert response.status_code == 404


async def test_pages_are_left_out_of_the_api_schema(anonymous: httpx.AsyncClient) -> None:
    paths = (await anonymous.get("/openapi.json")).json()["paths"]
    assert "/" not in paths and "/talk" not in paths
    assert "/v1/agents/{agent_id}/session-token" in paths
