from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from voxline.agent_spec import AgentSpec
from voxline.calls.engine import CallEngine
from voxline.config import Settings
from voxline.store.agents import create_agent
from voxline.store.database import Database
from voxline.store.secrets import put_secret
from voxline.store.session_state import Channel, Direction
from voxline.store.sessions import create_session
from voxline.store.workspaces import create_workspace

SERVER_OPENAI_KEY = "sk-server-" + "s" * 32
WORKSPACE_OPENAI_KEY = "sk-workspace-" + "w" * 32


@pytest.fixture
async def engine(database_url: str, tmp_path: Path) -> AsyncIterator[CallEngine]:
    """An engine whose server has an OpenAI key in its environment (and no other)."""
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        database_url=database_url,
        seed_demo_agent=False,
        preload_models=False,
        api_keys={"openai": SecretStr(SERVER_OPENAI_KEY)},
    )
    database = Database(database_url)
    engine = CallEngine(settings, database)
    try:
        yield engine
    finally:
        await engine.aclose()
        await database.dispose()


async def new_session(
    engine: CallEngine, spec: AgentSpec, secrets: dict[str, str] | None = None
) -> str:
    """A pending web session of a new workspace's agent; the workspace holds `secrets`."""
    async with engine.database.transaction() as db:
        workspace = await create_workspace(db, f"calls-{uuid.uuid4().hex[:10]}")
        for name, value in (secrets or {}).items():
            await put_secret(db, engine.credentials.box, workspace.id, name, value)
        agent = await create_agent(db, workspace.id, spec)
        row = await create_session(
            db,
            workspace_id=workspace.id,
            agent_id=agent.id,
            channel=Channel.WEB,
            direction=Direction.INBOUND,
        )
        return row.id
