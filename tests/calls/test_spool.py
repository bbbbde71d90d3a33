"""The spool keeps records on disk across a crash, and the next process writes them."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from tests.calls.conftest import new_session
from tests.runtime.fakes import eventually
from voxline.agent_spec import AgentSpec
from voxline.calls import ledger
from voxline.calls.engine import CallEngine
from voxline.calls.spool import Spool
from voxline.config import Settings
from voxline.runtime.recording import TranscriptItem
from voxline.store.database import Database
from voxline.store.models import TranscriptItemRow
from voxline.store.session_state import SessionStatus
from voxline.store.sessions import get_session

_CRASHING_WRITER = """
import asyncio, json, os, sys
from pathlib import Path
from voxline.calls.spool import Spool
spool = Spool(Path(sys.argv[1]), "proc_crashed", max_bytes=1 << 20)
spool.append(json.loads(sys.argv[2]))
asyncio.run(spool.sync())
os._exit(9)  # no clean-up: as if killed
"""


def _spool_and_crash(root: Path, records: list[dict[str, object]]) -> None:
    """Spool `records` in another process that then dies without cleaning up."""
    done = subprocess.run(
        [sys.executable, "-c", _CRASHING_WRITER, str(root), json.dumps(records)],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 9, done.stderr.decode()


def test_records_come_back_in_order_and_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "proc_a", max_bytes=1 << 20)
    spool.append([{"n": 1}, {"n": 2}])
    spool.append([{"n": 3}])
    [segment] = spool.seal()
    with segment.open("ab") as file:
        file.write(b'{"n": 4, "tor')
    assert Spool.read(segment) == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert spool.depth == 3
    spool.remove(segment, 3)
    assert (spool.depth, spool.size) == (0, 0)
    spool.close()
    assert not (tmp_path / "proc_a").exists(), "an empty spool leaves nothing behind"


def test_the_bound_marks_the_spool_full_and_never_refuses_a_record(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "proc_a", max_bytes=1024)
    spool.append([{"text": "x" * 600}])
    assert not spool.full
    spool.append([{"text": "y" * 600}])
    assert spool.full
    assert spool.depth == 2
    spool.close()


def test_a_live_process_keeps_its_spool_and_a_dead_ones_is_adopted(tmp_path: Path) -> None:
    live = Spool(tmp_path, "proc_live", max_bytes=1 << 20)
    live.append([{"n": 1}])
    _spool_and_crash(tmp_path, [{"n": 10}, {"n": 11}])

    adopter = Spool(tmp_path, "proc_new", max_bytes=1 << 20)

    assert adopter.depth == 2
    assert [Spool.read(segment) for segment in adopter.seal()] == [[{"n": 10}, {"n": 11}]]
    assert not (tmp_path / "proc_crashed").exists()
    assert live.depth == 1 and (tmp_path / "proc_live").exists()
    adopter.close()
    live.close()


async def test_a_spool_left_by_a_crashed_process_is_written_at_the_next_start(
    engine: CallEngine, database_url: str, tmp_path: Path
) -> None:
    session_id = await new_session(engine, AgentSpec(name="spooled"))
    now = datetime.now(UTC)
    records = [
        ledger.started(session_id, at=now, owner="proc_crashed"),
        ledger.item(session_id, TranscriptItem(seq=1, role="agent", text="Hello.", at_ms=0)),
        ledger.item(session_id, TranscriptItem(seq=2, role="caller", text="Hi.", at_ms=900)),
        ledger.finished(
            session_id,
            status=SessionStatus.COMPLETED,
            end_reason="caller_hangup",
            error=None,
            at=now,
            first_response_ms=120.0,
        ),
    ]
    data_dir = tmp_path / "restarted"
    _spool_and_crash(data_dir / "spool", records)

    settings = Settings(
        _env_file=None, data_dir=data_dir, database_url=database_url, preload_models=False
    )
    database = Database(database_url)
    restarted = CallEngine(settings, database)
    try:
        assert restarted.ledger.depth == len(records)
        restarted.ledger.start()
        await eventually(lambda: not restarted.ledger.outage, 10)
    finally:
        await restarted.aclose()
        await database.dispose()

    async with engine.database.transaction() as db:
        row = await get_session(db, session_id)
        texts = (
            await db.scalars(
                select(TranscriptItemRow.text)
                .where(TranscriptItemRow.session_id == session_id)
                .order_by(TranscriptItemRow.seq)
            )
        ).all()
    assert (row.status, row.end_reason, row.first_response_ms) == (
        "completed",
        "caller_hangup",
        120.0,
    )
    assert row.owner_process_id == "proc_crashed"
    assert texts == ["Hello.", "Hi."]
    assert not list((data_dir / "spool").glob("*/*.jsonl"))


async def test_a_full_spool_refuses_new_calls(database_url: str, tmp_path: Path) -> None:
    _spool_and_crash(tmp_path / "spool", [{"kind": "item", "text": "x" * 2048}])
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        database_url=database_url,
        preload_models=False,
        spool_max_bytes=1024,
    )
    database = Database(database_url)
    engine = CallEngine(settings, database)
    try:
        assert engine.ledger.full
        assert (
            engine.refusal() == "this server cannot record calls right now (database unavailable)"
        )
    finally:
        await engine.aclose()
        await database.dispose()
