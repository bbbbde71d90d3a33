"""`LedgerRecorder`: what the runtime records lands in the store, upserted by seq / turn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from voxline.calls.ledger import LedgerRecorder, SessionLedger
from voxline.calls.spool import Spool
from voxline.calls.webhooks import SessionWebhooks
from voxline.runtime.recording import TranscriptItem, TurnMetrics
from voxline.store.database import Database
from voxline.store.models import AgentRow, TranscriptItemRow, TurnMetricsRow, Workspace
from voxline.store.session_state import Channel, Direction
from voxline.store.sessions import create_session


@pytest.fixture
async def ledger(database: Database, tmp_path: Path) -> AsyncIterator[SessionLedger]:
    async with httpx.AsyncClient() as http:
        spool = Spool(tmp_path / "spool", "proc_test", max_bytes=1 << 20)
        ledger = SessionLedger(database, spool, SessionWebhooks(http))
        try:
            yield ledger
        finally:
            await ledger.aclose()


async def _recorder(
    ledger: SessionLedger, database: Database, workspace: Workspace, agent: AgentRow
) -> LedgerRecorder:
    async with database.transaction() as db:
        row = await create_session(
            db,
            workspace_id=workspace.id,
            agent_id=agent.id,
            channel=Channel.WEB,
            direction=Direction.INBOUND,
        )
    return LedgerRecorder(ledger, row.id)


async def _items(database: Database, session_id: str) -> list[TranscriptItemRow]:
    async with database.transaction() as db:
        rows = await db.scalars(
            select(TranscriptItemRow)
            .where(TranscriptItemRow.session_id == session_id)
            .order_by(TranscriptItemRow.seq)
        )
        return list(rows)


async def test_items_are_stored_with_every_field(
    ledger: SessionLedger, database: Database, workspace: Workspace, agent: AgentRow
) -> None:
    recorder = await _recorder(ledger, database, workspace, agent)
    await recorder.record_item(TranscriptItem(seq=0, role="caller", text="hi", at_ms=900))
    await recorder.record_item(
        TranscriptItem(
            seq=1,
            role="tool_call",
            text="",
            at_ms=1500,
            data={"name": "lookup", "arguments": {"day": "monday"}},
        )
    )
    rows = await _items(database, recorder.session_id)
    assert [(r.seq, r.role, r.text, r.at_ms) for r in rows] == [
        (0, "caller", "hi", 900),
        (1, "tool_call", "", 1500),
    ]
    assert rows[1].data == {"name": "lookup", "arguments": {"day": "monday"}}


async def test_item_with_same_seq_replaces_the_earlier_one(
    ledger: SessionLedger, database: Database, workspace: Workspace, agent: AgentRow
) -> None:
    recorder = await _recorder(ledger, database, workspace, agent)
    await recorder.record_item(TranscriptItem(seq=3, role="agent", text="Let me check", at_ms=10))
    await recorder.record_item(
        TranscriptItem(
            seq=3,
            role="agent",
            text="Let me check that for you",
            at_ms=10,
            interrupted=True,
            heard_text="Let me",
        )
    )
    rows = await _items(database, recorder.session_id)
    assert len(rows) == 1
    assert (rows[0].text, rows[0].interrupted, rows[0].heard_text) == (
        "Let me check that for you",
        True,
        "Let me",
    )


async def test_metrics_are_stored_and_upserted_by_turn(
    ledger: SessionLedger, database: Database, workspace: Workspace, agent: AgentRow
) -> None:
    recorder = await _recorder(ledger, database, workspace, agent)
    await recorder.record_metrics(TurnMetrics(turn=1, stt_ms=300.0))
    await recorder.record_metrics(TurnMetrics(turn=1, stt_ms=310.0, turn_latency_ms=650.0))
    async with database.transaction() as db:
        rows = list(
            await db.scalars(
                select(TurnMetricsRow).where(TurnMetricsRow.session_id == recorder.session_id)
            )
        )
    assert [(r.turn, r.stt_ms, r.turn_latency_ms, r.overhead_ms) for r in rows] == [
        (1, 310.0, 650.0, None)
    ]


async def test_a_record_the_database_refuses_is_dropped_and_the_others_written(
    ledger: SessionLedger, database: Database, workspace: Workspace, agent: AgentRow
) -> None:
    recorder = await _recorder(ledger, database, workspace, agent)
    orphan = LedgerRecorder(ledger, "sess_00000000000000000000000000")
    await asyncio.gather(
        orphan.record_item(TranscriptItem(seq=1, role="caller", text="lost", at_ms=0)),
        recorder.record_item(TranscriptItem(seq=1, role="caller", text="kept", at_ms=0)),
    )
    assert [row.text for row in await _items(database, recorder.session_id)] == ["kept"]
    assert not ledger.outage, "a refusal is not an outage: nothing waits in the spool"
