"""The console's page and assets, and its development-mode key."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from tests.api.conftest import make_settings
from voxline.api.app import create_app
from voxline.app_state import AppState
from voxline.store.models import Workspace
from voxline.store.seed import DEMO_WORKSPACE
from voxline.store.workspaces import create_workspace, get_workspace_by_name


@pytest.fixture
async def dev_app(database_url: str, tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = make_settings(database_url, tmp_path).model_copy(update={"dev_mode": True})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


def _client(app: FastAPI, client_host: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(client_host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000")


async def test_the_console_page_and_its_assets_are_served(anonymous: httpx.AsyncClient) -> None:
    page = await anonymous.get("/console")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/console/assets/console.js" in page.text
    script = await anonymous.get("/console/assets/console.js")
    assert script.headers["content-type"].startswith("text/javascript")
    style = await anonymous.get("/console/assets/console.css")
    assert style.status_code == 200
    assert (await anonymous.get("/console/assets/../app_state.py")).status_code == 404
    assert (await anonymous.get("/console/assets/index.html")).status_code == 404


async def test_the_development_key_works_for_the_api(dev_app: FastAPI) -> None:
    """A key of the demo workspace or, without one, of the oldest workspace."""
    state: AppState = dev_app.state.voxline
    async with state.database.transaction() as db:
        await create_workspace(db, f"dev-console-{uuid.uuid4().hex[:8]}")
        demo = await get_workspace_by_name(db, DEMO_WORKSPACE)
        oldest = await db.scalar(select(Workspace).order_by(Workspace.created_at, Workspace.id))
        expected = demo or oldest
        assert expected is not None
    async with _client(dev_app) as client:
        response = await client.post("/v1/dev/console-key")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["workspaceId"] == expected.id
        headers = {"Authorization": f"Bearer {body['apiKey']}"}
        assert (await client.get("/v1/agents", headers=headers)).status_code == 200


async def test_the_development_key_is_for_this_machine_only(dev_app: FastAPI) -> None:
    async with _client(dev_app, client_host="10.0.0.7") as client:
        assert (await client.post("/v1/dev/console-key")).status_code == 403


async def test_the_development_key_is_off_outside_development_mode(
    anonymous: httpx.AsyncClient,
) -> None:
    assert (await anonymous.post("/v1/dev/console-key")).status_code == 404
