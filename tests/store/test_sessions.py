from __future__ import annotations

import asyncio

import pytest

from voxline.ids import is_valid_id
from voxline.store.database import Database
from voxline.store.models import AgentRow, SessionRow, Workspace
from voxline.store.session_state import Channel, Direction, IllegalTransition, SessionStatus
from voxline.store.sessions import (
    create_session,
    finish,
    get_session,
    list_sessions,
    mark_in_progress,
)


async def _pending(database: Database, workspace: Workspace, agent: AgentRow) -> SessionRow:
    async with database.transaction() as db:
        return await create_session(
            db,
            workspace_id=workspace.id,
            agent_id=agent.id,
            channel=Channel.PHONE,
            direction=Direction.INBOUND,
            from_number="+15550001111",
            call_sid=f"CA{agent.id}",
        )


async def test_new_session_is_pending(
    database: Database, workspace: Workspace, agent: AgentRow
) -> None:
    row = await _pending(database, workspace, agent)
    assert is_valid_id(row.id, "sess")
    assert row.status == SessionStatus.PENDING
    assert row.started_at is None


async def test_session_goes_pending_in_progress_completed(
    database: Database, workspace: Workspace, agent: AgentRow
) -> None:
    row = await _pending(database, workspace, agent)
    async with database.transaction() as db:
        await mark_in_progress(db, row.id, stream_sid="MZ1")
        await finish(
            db,
            row.id,
            status=SessionStatus.COMPLETED,
            end_reason="caller_hangup",
            first_response_ms=142.5,
        )
    async with database.transaction() as db:
        done = await get_session(db, row.id, workspace_id=workspace.id)
    assert done.status == SessionStatus.COMPLETED
    assert (done.stream_sid, done.end_reason, done.first_response_ms) == (
        "MZ1",
        "caller_hangup",
        142.5,
    )
    assert done.started_at is not None and done.ended_at is not None
    assert done.started_at <= done.ended_at


async def test_pending_session_can_fail_without_starting(
    database: Database, workspace: Workspace, agent: AgentRow
) -> None:
    row = await _pending(database, workspace, agent)
    async with database.transaction() as db:
        failed = await finish(
            db, row.id, status=SessionStatus.FAILED, end_reason="no-answer", error="busy"
        )
    assert (failed.status, failed.error) == (SessionStatus.FAILED, "busy")


async def test_finishing_twice_is_an_illegal_transition(
    database: Database, workspace: Workspace, agent: AgentRow
) -> None:
    row = await _pending(database, workspace, agent)
    async with database.transaction() as db:
        await finish(db, row.id, status=SessionStatus.FAILED, end_reason="x")
    with pytest.raises(IllegalTransition, match="failed"):
        async with database.transaction() as db:
            await finish(db, row.id, status=SessionStatus.FAILED, end_reason="again")


async def test_finish_refuses_a_non_final_status(
    database: Database, workspace: Workspace, agent: AgentRow
) -> None:
    row = await _pending(database, workspace, agent)
    with pytest.raises(ValueError, match="final status"):
        async with database.transaction() as db:
            await finish(db, row.id, status=SessionStatus.IN_PROGRESS, end_reason="x")


async def test_concurrent_finishes_let_exactly_one_win(
    database_url: str, workspace: Workspace, agent: AgentRow, database: Database
) -> None:
    row = await _pending(database, workspace, agent)
    async with database.transaction() as db:
        await mark_in_progress(db, row.id)
    engines = [Database(database_url) for _ in range(2)]

    async def attempt(engine: Database, reason: str) -> bool:
        try:
            async with engine.transaction() as db:
                await finish(db, row.id, status=SessionStatus.COMPLETED, end_reason=reason)
        except IllegalTransition:
            return False
        return True

    try:
        outcomes = await asyncio.gather(*(attempt(e, f"r{i}") for i, e in enumerate(engines)))
    finally:
        for engine in engines:
            await engine.dispose()
    assert sorted(outcomes) == [False, True]


async def test_list_is_scoped_and_filterable_by_agent(
    database: Database, workspace: Workspace, agent: AgentRow
) -> None:
    row = await _pending(database, workspace, agent)
    async with database.transaction() as db:
        mine = await list_sessions(db, workspace.id, agent_id=agent.id, limit=10, after=None)
        none = await list_sessions(db, workspace.id, agent_id="agent_x", limit=10, after=None)
    assert [item.id for item in mine.items] == [row.id]
    assert none.items == []


async def test_list_filters_by_status(
    database: Database, workspace: Workspace, agent: AgentRow
) -> None:
    pending = await _pending(database, workspace, agent)
    running = await _pending(database, workspace, agent)
    async with database.transaction() as db:
        await mark_in_progress(db, running.id)
        listed = await list_sessions(
            db, workspace.id, status=SessionStatus.PENDING, limit=10, after=None
        )
    assert [item.id for item in listed.items] == [pending.id]
