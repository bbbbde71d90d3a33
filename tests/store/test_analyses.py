"""Analysis jobs: claimed under a lease by one worker at a time, finished only by the holder
of the current claim."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import update

from voxline.agent_spec import AgentSpec, CallAnalysis, ScriptedLlm
from voxline.store import analyses as jobs
from voxline.store.agents import create_agent
from voxline.store.database import Database
from voxline.store.models import AgentRow, SessionAnalysisRow, Workspace
from voxline.store.session_state import Channel, Direction
from voxline.store.sessions import create_session
from voxline.store.workspaces import create_workspace

LEASE = timedelta(seconds=60)


async def _queued(database: Database, workspace: Workspace, agent: AgentRow) -> str:
    async with database.transaction() as db:
        row = await create_session(
            db,
            workspace_id=workspace.id,
            agent_id=agent.id,
            channel=Channel.WEB,
            direction=Direction.INBOUND,
        )
        await jobs.enqueue_analysis(
            db,
            session_id=row.id,
            workspace_id=workspace.id,
            instance_id=None,
            spec=CallAnalysis(llm=ScriptedLlm()),
            language="en",
            webhook_url=None,
        )
    return row.id


async def _nothing_else_due(database: Database) -> None:
    # The database is shared by the test run: settle the jobs other tests left due.
    async with database.transaction() as db:
        await db.execute(
            update(SessionAnalysisRow)
            .where(SessionAnalysisRow.status.in_(["pending", "running"]))
            .values(status="failed")
        )


async def test_a_claimed_job_is_not_claimed_again_until_its_lease_runs_out(
    database: Database, workspace: Workspace, agent: AgentRow
) -> None:
    await _nothing_else_due(database)
    session_id = await _queued(database, workspace, agent)
    async with database.transaction() as db:
        [first] = await jobs.claim_analyses(db, limit=5, lease=LEASE)
    async with database.transaction() as db:
        assert await jobs.claim_analyses(db, limit=5, lease=LEASE) == []
        assert await jobs.renew_lease(db, first, timedelta(seconds=-1))
    async with database.transaction() as db:
        [second] = await jobs.claim_analyses(db, limit=5, lease=LEASE)
    assert (first.session_id, second.session_id) == (session_id, session_id)
    assert (first.attempts, second.attempts) == (1, 2)
    async with database.transaction() as db:
        assert not await jobs.renew_lease(db, first, LEASE)
        assert await jobs.held(db, first) is None
        row = await jobs.held(db, second)
        assert row is not None
        await jobs.complete(db, row, summary="Hi.", data=None, success=None)
    async with database.transaction() as db:
        analysis = await jobs.session_analysis(db, session_id)
    assert analysis is not None and analysis.status == jobs.AnalysisStatus.DONE


async def test_a_job_put_back_for_later_waits_until_then(
    database: Database, workspace: Workspace, agent: AgentRow
) -> None:
    await _nothing_else_due(database)
    await _queued(database, workspace, agent)
    async with database.transaction() as db:
        [job] = await jobs.claim_analyses(db, limit=5, lease=LEASE)
        row = await jobs.held(db, job)
        assert row is not None
        await jobs.retry_later(db, row, "503", timedelta(seconds=60))
    async with database.transaction() as db:
        assert await jobs.claim_analyses(db, limit=5, lease=LEASE) == []


async def test_a_job_needs_its_model_resolved(
    database: Database, workspace: Workspace, agent: AgentRow
) -> None:
    async with database.transaction() as db:
        row = await create_session(
            db,
            workspace_id=workspace.id,
            agent_id=agent.id,
            channel=Channel.WEB,
            direction=Direction.INBOUND,
        )
        with pytest.raises(ValueError, match="LLM resolved"):
            await jobs.enqueue_analysis(
                db,
                session_id=row.id,
                workspace_id=workspace.id,
                instance_id=None,
                spec=CallAnalysis(),
                language="en",
                webhook_url=None,
            )


@pytest.fixture
async def postgres(_migrated_postgres_url: str) -> AsyncIterator[Database]:
    database = Database(_migrated_postgres_url)
    try:
        yield database
    finally:
        await database.dispose()


async def test_concurrent_claims_on_postgresql_skip_each_others_jobs(
    postgres: Database,
) -> None:
    await _nothing_else_due(postgres)
    async with postgres.transaction() as db:
        workspace = await create_workspace(db, f"claims-{uuid.uuid4().hex[:10]}")
        agent = await create_agent(db, workspace.id, AgentSpec(name="a"))
    queued = {await _queued(postgres, workspace, agent) for _ in range(2)}
    async with postgres.transaction() as first:
        [mine] = await jobs.claim_analyses(first, limit=1, lease=LEASE)
        # The first claim's transaction is still open, its row locked: the second skips it.
        async with postgres.transaction() as second:
            [theirs] = await jobs.claim_analyses(second, limit=1, lease=LEASE)
    assert {mine.session_id, theirs.session_id} == queued
