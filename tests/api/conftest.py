from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from voxline.api.app import create_app
from voxline.app_state import AppState
from voxline.config import Settings
from voxline.store.api_keys import create_api_key
from voxline.store.workspaces import create_workspace


def make_settings(database_url: str, data_dir: Path, *, seed: bool = False) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=data_dir,
        database_url=database_url,
        seed_demo_agent=seed,
        preload_models=False,
        dispatcher_enabled=False,
    )


@dataclass(frozen=True)
class Tenant:
    """A workspace and a client authenticated with one of its keys."""

    workspace_id: str
    key: str
    client: httpx.AsyncClient


@pytest.fixture
async def app(database_url: str, tmp_path: Path) -> AsyncIterator[FastAPI]:
    app = create_app(make_settings(database_url, tmp_path))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def anonymous(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def _tenant(app: FastAPI) -> AsyncIterator[Tenant]:
    state: AppState = app.state.voxline
    async with state.database.transaction() as db:
        workspace = await create_workspace(db, f"ws-{uuid.uuid4().hex[:12]}")
        key = await create_api_key(db, workspace.id)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {key.secret}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=headers
    ) as client:
        yield Tenant(workspace_id=workspace.id, key=key.secret, client=client)


@pytest.fixture
async def tenant(app: FastAPI) -> AsyncIterator[Tenant]:
    async for tenant in _tenant(app):
        yield tenant


@pytest.fixture
async def other_tenant(app: FastAPI) -> AsyncIterator[Tenant]:
    async for tenant in _tenant(app):
        yield tenant


@pytest.fixture
def client(tenant: Tenant) -> httpx.AsyncClient:
    return tenant.client


def assert_error(
    response: httpx.Response, status: int, type_: str, param: str | None = None
) -> None:
    """The response is the one error shape, with this status, type and param."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"type", "message", "param"}
    assert body["error"]["type"] == type_
    assert body["error"]["param"] == param
    assert body["error"]["message"]
