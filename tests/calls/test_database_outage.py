"""A database outage in the middle of a call loses nothing: the call goes on, its records
wait in the on-disk spool, and once the database is back every turn is stored, in order, and
the session is finalized."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.calls.conftest import new_session
from tests.fakes.webhook_server import WebhookServer
from tests.helpers.outages import Outage, outage_of
from tests.runtime.fakes import FakeTransport, eventually
from voxline.agent_spec import (
    AgentSpec,
    Interruptions,
    ScriptedLlm,
    ScriptedRule,
    ScriptedStt,
    ScriptedTts,
    TurnTaking,
)
from voxline.calls.engine import CallEngine
from voxline.config import Settings
from voxline.store.database import Database
from voxline.store.models import TranscriptItemRow, TurnMetricsRow
from voxline.store.sessions import get_session

QUESTIONS = ["When do you open?", "Where are you?", "Thanks, bye for now."]
SPEC = AgentSpec(
    name="outage",
    first_message="Hello.",
    stt=ScriptedStt(transcripts=QUESTIONS, latency_ms=20),
    llm=ScriptedLlm(
        rules=[
            ScriptedRule(match="open", say="At nine."),
            ScriptedRule(match="where", say="On Main Street."),
        ],
        default_reply="You are welcome.",
        first_token_ms=20,
        tokens_per_second=400,
    ),
    tts=ScriptedTts(first_byte_ms=5, ms_per_character=10),
    turn_taking=TurnTaking(vad="energy", interruptions=Interruptions(enabled=False)),
)


@pytest.fixture(params=["sqlite", "postgresql"])
async def outage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Outage]:
    async with outage_of(request.param, tmp_path) as outage:
        yield outage


@pytest.fixture
async def engine(outage: Outage, tmp_path: Path) -> AsyncIterator[CallEngine]:
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path / "data",
        database_url=outage.url,
        seed_demo_agent=False,
        preload_models=False,
    )
    database = Database(outage.url)
    engine = CallEngine(settings, database)
    try:
        yield engine
    finally:
        await outage.end()
        await engine.aclose()
        await database.dispose()


def _agent_silent(transport: FakeTransport) -> bool:
    return "echo" in transport.kinds() and transport.pending_marks == 0


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookServer]:
    async with WebhookServer(b"unused: signatures are tested with the webhooks") as server:
        yield server


async def test_every_turn_said_during_an_outage_is_stored_once_the_database_returns(
    engine: CallEngine, outage: Outage, receiver: WebhookServer, tmp_path: Path
) -> None:
    spec = AgentSpec.model_validate({**SPEC.model_dump(), "webhook_url": receiver.url("/echo")})
    session_id = await new_session(engine, spec)
    transport = FakeTransport()
    transport.start_caller()
    call = asyncio.create_task(engine.run(await engine.load(session_id), transport))
    try:
        await eventually(lambda: _agent_silent(transport), 5)

        await outage.begin(engine.database)
        for turn in range(1, len(QUESTIONS) + 1):
            await transport.speak(400)
            await eventually(lambda n=turn: len(transport.events_of("turn.metrics")) >= n, 8)
            await eventually(lambda: _agent_silent(transport), 8)
        await eventually(lambda: engine.ledger.outage, 5)
        transport.hang_up_caller()
        outcome = await asyncio.wait_for(call, 10)
    finally:
        await transport.stop_caller()

    assert outcome is not None and outcome.end_reason == "caller_hangup"
    assert list((tmp_path / "data" / "spool").glob("*/*.jsonl")), "records wait on disk"
    assert engine.ledger.depth > 0
    assert receiver.received == [], "session.ended waits for the session's end to be stored"

    await outage.end()
    await eventually(lambda: not engine.ledger.outage, 15)
    await eventually(lambda: receiver.received, 5)

    async with engine.database.transaction() as db:
        row = await get_session(db, session_id)
        items = (
            await db.scalars(
                select(TranscriptItemRow)
                .where(TranscriptItemRow.session_id == session_id)
                .order_by(TranscriptItemRow.seq)
            )
        ).all()
        metrics = (
            await db.scalars(select(TurnMetricsRow).where(TurnMetricsRow.session_id == session_id))
        ).all()
    assert (row.status, row.end_reason) == ("completed", "caller_hangup")
    assert row.owner_process_id == engine.process_id
    assert row.first_response_ms is not None
    assert [(item.role, item.text) for item in items] == [
        ("agent", "Hello."),
        ("caller", QUESTIONS[0]),
        ("agent", "At nine."),
        ("caller", QUESTIONS[1]),
        ("agent", "On Main Street."),
        ("caller", QUESTIONS[2]),
        ("agent", "You are welcome."),
    ]
    assert all(item.heard_text == item.text for item in items if item.role == "agent")
    assert sorted(entry.turn for entry in metrics) == [1, 2, 3]
    [ended] = receiver.received
    body = json.loads(ended.body)
    assert body["type"] == "session.ended"
    assert body["data"] == {
        "sessionId": session_id,
        "status": "completed",
        "endReason": "caller_hangup",
    }
