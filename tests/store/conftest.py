from __future__ import annotations

import uuid

import pytest

from voxline.agent_spec import AgentSpec, ScriptedLlm
from voxline.store.agents import create_agent
from voxline.store.database import Database
from voxline.store.models import AgentRow, Workspace
from voxline.store.workspaces import create_workspace


@pytest.fixture
async def workspace(database: Database) -> Workspace:
    async with database.transaction() as db:
        return await create_workspace(db, f"ws-{uuid.uuid4().hex[:10]}")


@pytest.fixture
async def agent(database: Database, workspace: Workspace) -> AgentRow:
    spec = AgentSpec(name="Tester", llm=ScriptedLlm())
    async with database.transaction() as db:
        return await create_agent(db, workspace.id, spec)
