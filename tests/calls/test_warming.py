"""A new or changed agent is warmed in the background: its first call finds the greeting
already synthesized."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.e2e.server import scripted_agent
from tests.runtime.fakes import FakeTransport
from voxline.agent_spec import AgentSpec
from voxline.api.app import create_app
from voxline.app_state import AppState
from voxline.audio.pcm import Pcm16
from voxline.config import Settings
from voxline.store.agents import create_agent
from voxline.store.api_keys import create_api_key
from voxline.store.session_state import Channel, Direction
from voxline.store.sessions import create_session
from voxline.store.workspaces import create_workspace

# Synthesizing a clause takes this long: a greeting not cached could not start sooner.
SLOW_TTS = {"provider": "scripted", "firstByteMs": 1500, "msPerCharacter": 20}


def _settings(data_dir: Path) -> Settings:
    # Its own SQLite database: start-up warms every stored agent of the database.
    return Settings(
        _env_file=None,
        data_dir=data_dir,
        database_url=f"sqlite+aiosqlite:///{data_dir / 'voxline.db'}",
        seed_demo_agent=False,
        preload_models=True,
    )


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    app = create_app(_settings(tmp_path))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    state: AppState = app.state.voxline
    async with state.database.transaction() as db:
        workspace = await create_workspace(db, f"warm-{uuid.uuid4().hex[:10]}")
        key = await create_api_key(db, workspace.id)
    headers = {"Authorization": f"Bearer {key.secret}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=headers
    ) as client:
        yield client


class _Line(FakeTransport):
    """A FakeTransport that says when the first audio went out."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.audio = asyncio.Event()

    async def send_audio(self, pcm: Pcm16) -> None:
        await super().send_audio(pcm)
        self.audio.set()


async def _first_audio_s(state: AppState, agent: dict[str, Any]) -> float:
    """Seconds from the start of the agent's first call (a phone line) to its first audio."""
    async with state.database.transaction() as db:
        row = await create_session(
            db,
            workspace_id=agent["workspaceId"],
            agent_id=agent["id"],
            channel=Channel.WEB,
            direction=Direction.INBOUND,
        )
    transport = _Line(input_rate=8000, output_rate=8000)
    started = time.monotonic()
    call = asyncio.create_task(state.engine.run(await state.engine.load(row.id), transport))
    try:
        async with asyncio.timeout(5):
            await transport.audio.wait()
    finally:
        transport.hang_up_caller()
        await call
    first = next(sent for sent in transport.log if sent.kind == "audio")
    return first.at - started


async def test_a_just_created_agents_first_call_finds_its_greeting_cached(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    state: AppState = app.state.voxline
    body = scripted_agent(
        firstMessage=f"Hello, thanks for calling desk {uuid.uuid4().hex[:6]}.", tts=SLOW_TTS
    )
    response = await client.post("/v1/agents", json=body)
    assert response.status_code == 201
    await state.engine.warmer.idle()
    assert await _first_audio_s(state, response.json()) < 0.5


async def test_a_changed_greeting_is_cached_before_the_next_call(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    state: AppState = app.state.voxline
    created = (await client.post("/v1/agents", json=scripted_agent(tts=SLOW_TTS))).json()
    await state.engine.warmer.idle()
    patched = await client.patch(
        f"/v1/agents/{created['id']}",
        json={"firstMessage": f"Good morning, dental office {uuid.uuid4().hex[:6]}."},
    )
    assert patched.status_code == 200
    await state.engine.warmer.idle()
    assert await _first_audio_s(state, patched.json()) < 0.5


async def test_start_up_caches_the_greeting_of_every_stored_agent(tmp_path: Path) -> None:
    greeting = f"Welcome back to desk {uuid.uuid4().hex[:6]}."
    first = create_app(_settings(tmp_path))
    async with first.router.lifespan_context(first):
        state: AppState = first.state.voxline
        async with state.database.transaction() as db:
            workspace = await create_workspace(db, f"warm-{uuid.uuid4().hex[:10]}")
            spec = AgentSpec.model_validate(scripted_agent(firstMessage=greeting, tts=SLOW_TTS))
            row = await create_agent(db, workspace.id, spec)
        agent = {"id": row.id, "workspaceId": workspace.id}
    restarted = create_app(_settings(tmp_path))
    async with restarted.router.lifespan_context(restarted):
        state = restarted.state.voxline
        await state.engine.warmer.idle()
        assert await _first_audio_s(state, agent) < 0.5
