from __future__ import annotations

import pytest

from voxline.agent_spec import AgentSpec, ScriptedTts
from voxline.ids import is_valid_id
from voxline.store.agents import (
    agent_spec,
    create_agent,
    delete_agent,
    get_agent,
    list_agents,
    replace_agent_spec,
)
from voxline.store.database import Database
from voxline.store.errors import Conflict, NotFound
from voxline.store.instances import create_instance
from voxline.store.models import AgentRow, Workspace
from voxline.store.workspaces import create_workspace


async def test_created_agent_round_trips_its_spec(database: Database, workspace: Workspace) -> None:
    spec = AgentSpec(name="Front desk", first_message="Hi {{name}}", tts=ScriptedTts())
    async with database.transaction() as db:
        row = await create_agent(db, workspace.id, spec)
    async with database.transaction() as db:
        loaded = await get_agent(db, workspace.id, row.id)
    assert is_valid_id(loaded.id, "agent")
    assert agent_spec(loaded) == spec
    assert loaded.spec["first_message"] == "Hi {{name}}"


async def test_agent_of_another_workspace_is_not_found(database: Database, agent: AgentRow) -> None:
    async with database.transaction() as db:
        other = await create_workspace(db, f"other-{agent.id}")
    with pytest.raises(NotFound, match=agent.id):
        async with database.transaction() as db:
            await get_agent(db, other.id, agent.id)


async def test_replacing_the_spec_updates_name_and_timestamp(
    database: Database, workspace: Workspace, agent: AgentRow
) -> None:
    async with database.transaction() as db:
        row = await get_agent(db, workspace.id, agent.id, for_update=True)
        await replace_agent_spec(db, row, AgentSpec(name="Renamed"))
    async with database.transaction() as db:
        loaded = await get_agent(db, workspace.id, agent.id)
    assert loaded.name == "Renamed"
    assert agent_spec(loaded).name == "Renamed"
    assert loaded.updated_at >= agent.updated_at


async def test_list_is_newest_first_and_scoped_to_the_workspace(
    database: Database, workspace: Workspace
) -> None:
    async with database.transaction() as db:
        ids = [(await create_agent(db, workspace.id, AgentSpec(name=f"a{i}"))).id for i in range(3)]
        other = await create_workspace(db, f"other-{ids[0]}")
        await create_agent(db, other.id, AgentSpec(name="elsewhere"))
    async with database.transaction() as db:
        page = await list_agents(db, workspace.id, limit=10, after=None)
    assert [row.id for row in page.items] == sorted(ids, reverse=True)


async def test_deleted_agent_is_gone(
    database: Database, workspace: Workspace, agent: AgentRow
) -> None:
    async with database.transaction() as db:
        await delete_agent(db, workspace.id, agent.id)
    with pytest.raises(NotFound):
        async with database.transaction() as db:
            await get_agent(db, workspace.id, agent.id)


async def test_agent_with_instances_cannot_be_deleted(
    database: Database, workspace: Workspace, agent: AgentRow
) -> None:
    async with database.transaction() as db:
        await create_instance(
            db, workspace.id, agent_id=agent.id, external_ref=None, variables={}, memory=[]
        )
    with pytest.raises(Conflict, match="1 instance"):
        async with database.transaction() as db:
            await delete_agent(db, workspace.id, agent.id)
