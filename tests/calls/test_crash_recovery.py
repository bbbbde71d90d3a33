"""Processes beat in the database and own their live sessions; the sessions of a process that
stopped beating are ended as failed/server_crash by any other, exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from tests.calls.conftest import new_session
from voxline.agent_spec import AgentSpec
from voxline.calls.engine import CallEngine
from voxline.calls.heartbeat import Heartbeat
from voxline.calls.webhooks import SessionWebhooks
from voxline.ids import new_id
from voxline.store.database import Database
from voxline.store.models import ProcessHeartbeat, TranscriptItemRow
from voxline.store.sessions import get_session, mark_in_progress

_TIMEOUT_S = 1.0


@pytest.fixture
async def webhooks() -> AsyncIterator[SessionWebhooks]:
    async with httpx.AsyncClient() as http:
        yield SessionWebhooks(http)


async def _live_session(engine: CallEngine, owner: str) -> str:
    """An in-progress session run by `owner`, with one transcript item stored."""
    session_id = await new_session(engine, AgentSpec(name="crashy"))
    async with engine.database.transaction() as db:
        await mark_in_progress(db, session_id, owner_process_id=owner)
        db.add(
            TranscriptItemRow(
                session_id=session_id,
                seq=1,
                role="agent",
                text="Hello.",
                at_ms=0,
                interrupted=False,
                heard_text="Hello.",
                data={},
            )
        )
    return session_id


async def test_the_sessions_of_a_process_that_stopped_beating_end_as_server_crash(
    engine: CallEngine, webhooks: SessionWebhooks
) -> None:
    crashed = Heartbeat(engine.database, new_id("proc"), webhooks, timeout_s=_TIMEOUT_S)
    survivor = Heartbeat(engine.database, new_id("proc"), webhooks, timeout_s=_TIMEOUT_S)
    await crashed.beat()
    await survivor.beat()
    orphan = await _live_session(engine, crashed.process_id)
    alive = await _live_session(engine, survivor.process_id)

    assert orphan not in await survivor.sweep(), "its owner beat moments ago"
    await asyncio.sleep(_TIMEOUT_S + 0.2)
    await survivor.beat()
    ended = await survivor.sweep()

    assert orphan in ended and alive not in ended
    async with engine.database.transaction() as db:
        row = await get_session(db, orphan)
        kept = await get_session(db, alive)
        texts = (
            await db.scalars(
                select(TranscriptItemRow.text).where(TranscriptItemRow.session_id == orphan)
            )
        ).all()
        gone = await db.get(ProcessHeartbeat, crashed.process_id)
    assert (row.status, row.end_reason) == ("failed", "server_crash")
    assert row.ended_at is not None
    assert texts == ["Hello."], "the stored transcript is kept"
    assert kept.status == "in_progress"
    assert gone is None, "a dead process that owns nothing is forgotten"


async def test_several_processes_sweeping_at_once_end_each_session_once(
    engine: CallEngine, database_url: str, webhooks: SessionWebhooks
) -> None:
    crashed = Heartbeat(engine.database, new_id("proc"), webhooks, timeout_s=_TIMEOUT_S)
    await crashed.beat()
    orphans = {await _live_session(engine, crashed.process_id) for _ in range(6)}
    await asyncio.sleep(_TIMEOUT_S + 0.2)

    databases = [Database(database_url) for _ in range(3)]
    sweepers = [
        Heartbeat(database, new_id("proc"), webhooks, timeout_s=_TIMEOUT_S)
        for database in databases
    ]
    try:
        results = await asyncio.gather(*(sweeper.sweep() for sweeper in sweepers))
    finally:
        for database in databases:
            await database.dispose()

    ended = [session_id for result in results for session_id in result]
    assert len(ended) == len(set(ended)), "no session is ended twice"
    assert orphans <= set(ended)


async def test_a_process_that_stops_cleanly_leaves_the_heartbeats(
    engine: CallEngine, webhooks: SessionWebhooks
) -> None:
    heartbeat = Heartbeat(engine.database, new_id("proc"), webhooks, timeout_s=_TIMEOUT_S)
    heartbeat.start()
    await heartbeat.beat()
    await heartbeat.aclose()
    async with engine.database.transaction() as db:
        assert await db.get(ProcessHeartbeat, heartbeat.process_id) is None
