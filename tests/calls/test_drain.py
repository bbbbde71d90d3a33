"""The engine's drain: new calls are refused, live calls may finish, and those still live at
the timeout hear the drain message and end as server_shutdown."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from tests.calls.conftest import new_session
from tests.runtime.fakes import FakeTransport, eventually
from voxline.agent_spec import AgentSpec, ScriptedLlm, ScriptedStt, ScriptedTts, TurnTaking
from voxline.calls.engine import CallEngine
from voxline.store.models import TranscriptItemRow
from voxline.store.sessions import get_session

SPEC = AgentSpec(
    name="drained",
    first_message="Hello.",
    stt=ScriptedStt(latency_ms=20),
    llm=ScriptedLlm(first_token_ms=20),
    tts=ScriptedTts(first_byte_ms=5, ms_per_character=10),
    turn_taking=TurnTaking(vad="energy"),
)


async def _live_call(engine: CallEngine) -> tuple[str, FakeTransport, asyncio.Task[object]]:
    session_id = await new_session(engine, SPEC)
    transport = FakeTransport()
    transport.start_caller()
    task: asyncio.Task[object] = asyncio.create_task(
        engine.run(await engine.load(session_id), transport)
    )
    await eventually(lambda: "echo" in transport.kinds() and transport.pending_marks == 0, 5)
    return session_id, transport, task


async def test_calls_still_live_at_the_drain_timeout_hear_the_message_and_end(
    engine: CallEngine,
) -> None:
    leaving_id, leaving, leaving_task = await _live_call(engine)
    staying_id, staying, staying_task = await _live_call(engine)
    assert engine.refusal() is None

    drain = asyncio.create_task(engine.drain(1.0, "We are closing now. Goodbye."))
    await asyncio.sleep(0.2)
    assert engine.draining.is_set()
    assert engine.refusal() == "this server is shutting down"
    leaving.hang_up_caller()
    ended = await asyncio.wait_for(drain, 15)
    await asyncio.gather(leaving_task, staying_task)
    for transport in (leaving, staying):
        await transport.stop_caller()

    assert ended == 1
    assert staying.hung_up.is_set()
    async with engine.database.transaction() as db:
        left = await get_session(db, leaving_id)
        drained = await get_session(db, staying_id)
        last = await db.scalar(
            select(TranscriptItemRow)
            .where(TranscriptItemRow.session_id == staying_id)
            .order_by(TranscriptItemRow.seq.desc())
            .limit(1)
        )
    assert (left.status, left.end_reason) == ("completed", "caller_hangup")
    assert (drained.status, drained.end_reason) == ("completed", "server_shutdown")
    assert last is not None
    assert (last.text, last.heard_text) == ("We are closing now. Goodbye.",) * 2


async def test_abort_ends_live_calls_at_once_as_failed_server_shutdown(
    engine: CallEngine,
) -> None:
    session_id, transport, task = await _live_call(engine)
    await engine.abort()
    assert await task is None
    await transport.stop_caller()
    async with engine.database.transaction() as db:
        row = await get_session(db, session_id)
    assert (row.status, row.end_reason) == ("failed", "server_shutdown")
