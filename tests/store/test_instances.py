from __future__ import annotations

from datetime import UTC, datetime

import pytest

from voxline.agent_spec import AgentSpec
from voxline.ids import is_valid_id
from voxline.store.agents import create_agent
from voxline.store.database import Database
from voxline.store.errors import Conflict, NotFound
from voxline.store.instances import (
    MemoryNote,
    add_memory_note,
    create_instance,
    delete_instance,
    delete_memory_note,
    fold_memory_notes,
    get_instance,
    list_instances,
    memory_notes,
    update_instance,
)
from voxline.store.models import AgentRow, InstanceRow, Workspace
from voxline.store.workspaces import create_workspace


async def _instance(
    database: Database, workspace: Workspace, agent: AgentRow, external_ref: str | None
) -> InstanceRow:
    async with database.transaction() as db:
        return await create_instance(
            db,
            workspace.id,
            agent_id=agent.id,
            external_ref=external_ref,
            variables={"name": "Ada"},
            memory=[],
        )


async def test_created_instance_round_trips_variables_and_memory(
    database: Database, workspace: Workspace, agent: AgentRow
) -> None:
    note = MemoryNote(text="Prefers mornings", created_at=datetime(2025, 1, 1, tzinfo=UTC))
    async with database.transaction() as db:
        row = await create_instance(
            db,
            workspace.id,
            agent_id=agent.id,
            external_ref="crm-1",
            variables={"name": "Ada"},
            memory=[note],
        )
    async with database.transaction() as db:
        loaded = await get_instance(db, workspace.id, row.id)
    assert is_valid_id(loaded.id, "inst")
    assert (loaded.external_ref, loaded.variables) == ("crm-1", {"name": "Ada"})
    assert memory_notes(loaded) == [note]


async def test_instance_needs_an_agent_of_the_same_workspace(
    database: Database, agent: AgentRow
) -> None:
    async with database.transaction() as db:
        other = await create_workspace(db, f"other-{agent.id}")
    with pytest.raises(NotFound) as caught:
        async with database.transaction() as db:
            await create_instance(
                db, other.id, agent_id=agent.id, external_ref=None, variables={}, memory=[]
            )
    assert caught.value.param == "agentId"


async def test_external_ref_is_unique_per_agent(
    database: Database, workspace: Workspace, agent: AgentRow
) -> None:
    await _instance(database, workspace, agent, "crm-1")
    with pytest.raises(Conflict) as caught:
        await _instance(database, workspace, agent, "crm-1")
    assert caught.value.param == "externalRef"


async def test_same_external_ref_is_allowed_for_another_agent(
    database: Database, workspace: Workspace, agent: AgentRow
) -> None:
    async with database.transaction() as db:
        second = await create_agent(db, workspace.id, AgentSpec(name="Second"))
    await _instance(database, workspace, agent, "crm-1")
    row = await _instance(database, workspace, second, "crm-1")
    assert row.agent_id == second.id


async def test_many_instances_may_have_no_external_ref(
    database: Database, workspace: Workspace, agent: AgentRow
) -> None:
    first = await _instance(database, workspace, agent, None)
    second = await _instance(database, workspace, agent, None)
    assert first.id != second.id


async def test_update_to_a_taken_external_ref_is_a_conflict(
    database: Database, workspace: Workspace, agent: AgentRow
) -> None:
    await _instance(database, workspace, agent, "taken")
    row = await _instance(database, workspace, agent, "free")
    with pytest.raises(Conflict):
        async with database.transaction() as db:
            row = await get_instance(db, workspace.id, row.id, for_update=True)
            await update_instance(
                db,
                row,
                external_ref="taken",
                variables={},
                memory=memory_notes(row),
                memory_enabled=True,
            )


async def test_list_filters_by_agent(
    database: Database, workspace: Workspace, agent: AgentRow
) -> None:
    async with database.transaction() as db:
        second = await create_agent(db, workspace.id, AgentSpec(name="Second"))
    mine = await _instance(database, workspace, agent, None)
    await _instance(database, workspace, second, None)
    async with database.transaction() as db:
        page = await list_instances(db, workspace.id, agent_id=agent.id, limit=10, after=None)
    assert [row.id for row in page.items] == [mine.id]


async def test_memory_note_is_appended_dated_now(
    database: Database, workspace: Workspace, agent: AgentRow
) -> None:
    row = await _instance(database, workspace, agent, None)
    before = datetime.now(UTC)
    async with database.transaction() as db:
        row = await get_instance(db, workspace.id, row.id, for_update=True)
        await add_memory_note(db, row, "Asked about parking")
    async with database.transaction() as db:
        notes = memory_notes(await get_instance(db, workspace.id, row.id))
    assert [note.text for note in notes] == ["Asked about parking"]
    assert notes[0].created_at >= before


async def test_a_memory_note_keeps_its_id_and_can_be_removed(
    database: Database, workspace: Workspace, agent: AgentRow
) -> None:
    row = await _instance(database, workspace, agent, None)
    async with database.transaction() as db:
        row = await get_instance(db, workspace.id, row.id, for_update=True)
        first = await add_memory_note(db, row, "Asked about parking")
        second = await add_memory_note(db, row, "Booked a cleaning")
    async with database.transaction() as db:
        row = await get_instance(db, workspace.id, row.id, for_update=True)
        assert [note.id for note in memory_notes(row)] == [first.id, second.id]
        await delete_memory_note(db, row, first.id)
    async with database.transaction() as db:
        row = await get_instance(db, workspace.id, row.id, for_update=True)
        assert [note.text for note in memory_notes(row)] == ["Booked a cleaning"]
        with pytest.raises(NotFound):
            await delete_memory_note(db, row, first.id)


async def test_folding_replaces_the_oldest_notes_only_if_all_are_still_there(
    database: Database, workspace: Workspace, agent: AgentRow
) -> None:
    row = await _instance(database, workspace, agent, None)
    async with database.transaction() as db:
        row = await get_instance(db, workspace.id, row.id, for_update=True)
        notes = [await add_memory_note(db, row, f"call {n}") for n in range(3)]
        assert await fold_memory_notes(db, row, [notes[0].id, "note_gone"], "x") is None
        folded = await fold_memory_notes(db, row, [notes[0].id, notes[1].id], "calls 0-1")
    assert folded is not None and folded.created_at == notes[1].created_at
    async with database.transaction() as db:
        kept = memory_notes(await get_instance(db, workspace.id, row.id))
    assert [note.text for note in kept] == ["calls 0-1", "call 2"]


async def test_deleted_instance_is_gone(
    database: Database, workspace: Workspace, agent: AgentRow
) -> None:
    row = await _instance(database, workspace, agent, None)
    async with database.transaction() as db:
        await delete_instance(db, workspace.id, row.id)
    with pytest.raises(NotFound):
        async with database.transaction() as db:
            await get_instance(db, workspace.id, row.id)
