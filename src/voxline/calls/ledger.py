"""`SessionLedger`: the one ordered path by which calls write to the store, outages included.

Every record a call leaves (session started, transcript item, turn metrics, session finished)
is submitted here. While the database answers, records are written in batches, in the order
they were submitted. When it does not (unreachable, refusing connections, read-only), that
batch and every later one go to the on-disk `Spool` until a replay, tried every `retry_s`,
has written the whole spool in order; then writes go straight to the database again. A
session's `session.ended` webhook is sent once its finish is in the database.

Replays are idempotent (items and metrics are upserts, a status change applies only from the
status it expects), so a spool replayed twice after a crash leaves the same rows. A record the
database refuses for another reason (its session was deleted) is logged and dropped: waiting
would not help it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from voxline.agent_spec import CallAnalysis
from voxline.calls.spool import Record, Spool
from voxline.calls.webhooks import SessionWebhooks
from voxline.runtime.recording import TranscriptItem, TurnMetrics
from voxline.store import sessions as session_store
from voxline.store.analyses import enqueue_analysis
from voxline.store.database import Database
from voxline.store.errors import NotFound
from voxline.store.models import TranscriptItemRow, TurnMetricsRow, Workspace
from voxline.store.outage import is_outage
from voxline.store.session_state import SessionStatus
from voxline.store.upsert import upsert

logger = logging.getLogger(__name__)

_CHUNK = 500
_WRITE_TIMEOUT_S = 15.0


def started(
    session_id: str,
    *,
    at: datetime,
    owner: str,
    call_sid: str | None = None,
    stream_sid: str | None = None,
) -> Record:
    """pending -> in_progress, owned by process `owner`."""
    return {
        "kind": "started",
        "session": session_id,
        "at": at.isoformat(),
        "owner": owner,
        "call_sid": call_sid,
        "stream_sid": stream_sid,
    }


def item(session_id: str, entry: TranscriptItem) -> Record:
    return {"kind": "item", "session": session_id, **asdict(entry)}


def metrics(session_id: str, entry: TurnMetrics) -> Record:
    return {"kind": "metrics", "session": session_id, **asdict(entry)}


def finished(
    session_id: str,
    *,
    status: SessionStatus,
    end_reason: str,
    error: str | None,
    at: datetime,
    first_response_ms: float | None = None,
    webhook_url: str | None = None,
    analysis: CallAnalysis | None = None,
    language: str = "en",
) -> Record:
    """-> completed or failed; `webhook_url` gets `session.ended` once it is stored, and the
    `analysis` (its `llm` resolved) is queued in the same transaction."""
    return {
        "kind": "finished",
        "session": session_id,
        "status": SessionStatus(status).value,
        "end_reason": end_reason,
        "error": error,
        "at": at.isoformat(),
        "first_response_ms": first_response_ms,
        "webhook_url": webhook_url,
        "analysis": None if analysis is None else analysis.model_dump(mode="json"),
        "language": language,
    }


@dataclass(frozen=True, slots=True)
class _Ended:
    url: str
    secret: bytes
    session_id: str
    status: str
    end_reason: str


class SessionLedger:
    """Process-wide. `write()` returns once its records are in the database or durable in the
    spool; `outage` is true while the spool holds records."""

    def __init__(
        self,
        database: Database,
        spool: Spool,
        webhooks: SessionWebhooks,
        *,
        retry_s: float = 1.0,
    ) -> None:
        self._database = database
        self._spool = spool
        self._webhooks = webhooks
        self._retry_s = retry_s
        self._pending: list[tuple[list[Record], asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._next_replay = 0.0

    @property
    def outage(self) -> bool:
        return self._spool.depth > 0

    @property
    def depth(self) -> int:
        """Records waiting in the spool."""
        return self._spool.depth

    @property
    def spool_bytes(self) -> int:
        return self._spool.size

    @property
    def full(self) -> bool:
        """The spool reached its bound: no new call should start."""
        return self._spool.full

    def start(self) -> None:
        """Begin writing (and replay a spool left by a stopped process)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="voxline-ledger")

    async def write(self, records: Sequence[Record]) -> None:
        """Store `records` after everything submitted before them."""
        if self._closing:
            raise RuntimeError("the ledger is closed")
        self.start()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((list(records), future))
        self._wake.set()
        await asyncio.shield(future)

    async def aclose(self, timeout_s: float = 10.0) -> None:
        """Write what is pending (to the database, or the spool), then stop. A spool that is
        not empty stays on disk for the next start."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            done, _ = await asyncio.wait([self._task], timeout=timeout_s)
            if not done:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
        if self._pending:
            # The database hung past the deadline: the spool keeps what it could not take.
            batch, self._pending = self._pending, []
            with contextlib.suppress(OSError):
                self._spool.append([r for records, _ in batch for r in records])
        self._spool.close()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                if self._closing:
                    return
                timeout = self._retry_s if self._spool.depth else None
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()
                self._wake.clear()
            try:
                if self._spool.depth and not self._closing and loop.time() >= self._next_replay:
                    await self._replay()
                if self._pending:
                    batch, self._pending = self._pending, []
                    await self._write(batch)
            except Exception:
                logger.exception("the session ledger failed; retrying")
                await asyncio.sleep(self._retry_s)

    async def _write(self, batch: list[tuple[list[Record], asyncio.Future[None]]]) -> None:
        records = [record for records, _ in batch for record in records]
        if not self._spool.depth:
            written = await self._write_through(records)
            if written == len(records):
                _resolve(batch)
                return
            records = records[written:]
            logger.warning("the database is unavailable: spooling call records on disk")
            self._next_replay = asyncio.get_running_loop().time() + self._retry_s
        try:
            self._spool.append(records)
            await self._spool.sync()
        except OSError as exc:
            logger.error("could not spool %d call records (%s); retrying", len(records), exc)
            self._pending[:0] = batch
            await asyncio.sleep(self._retry_s)
            return
        _resolve(batch)

    async def _write_through(self, records: list[Record]) -> int:
        """Write `records` in chunks; how many were written before the database failed."""
        written = 0
        for start in range(0, len(records), _CHUNK):
            chunk = records[start : start + _CHUNK]
            try:
                await self._apply(chunk)
            except Exception as exc:
                if not is_outage(exc):
                    raise
                logger.debug("database write failed: %s", exc)
                return written
            written += len(chunk)
        return written

    async def _replay(self) -> None:
        segments = self._spool.seal()
        for segment in segments:
            records = Spool.read(segment)
            if await self._write_through(records) < len(records):
                self._next_replay = asyncio.get_running_loop().time() + self._retry_s
                return
            self._spool.remove(segment, len(records))
        if segments and not self._spool.depth:
            logger.warning("the database is back: every spooled call record is written")

    async def _apply(self, records: list[Record]) -> None:
        """One transaction; if the database refuses it for a reason other than an outage,
        record by record, dropping the refused ones."""
        try:
            ended = await self._transaction(records)
        except Exception as exc:
            if is_outage(exc):
                raise
            if len(records) == 1:
                logger.error("call record refused by the database, dropped: %s", exc)
                return
            ended = []
            for record in records:
                try:
                    ended += await self._transaction([record])
                except Exception as single:
                    if is_outage(single):
                        raise
                    logger.error("call record refused by the database, dropped: %s", single)
        for entry in ended:
            self._webhooks.session_ended(
                entry.url, entry.secret, entry.session_id, entry.status, entry.end_reason
            )

    async def _transaction(self, records: list[Record]) -> list[_Ended]:
        ended: list[_Ended] = []
        async with asyncio.timeout(_WRITE_TIMEOUT_S), self._database.transaction() as db:
            for record in records:
                done = await _apply_record(db, record)
                if done is not None:
                    ended.append(done)
        return ended


async def _apply_record(db: AsyncSession, record: Record) -> _Ended | None:
    kind = record["kind"]
    session_id: str = record["session"]
    if kind in ("item", "metrics"):
        model = TranscriptItemRow if kind == "item" else TurnMetricsRow
        key = "seq" if kind == "item" else "turn"
        values: dict[str, Any] = {k: v for k, v in record.items() if k not in ("kind", "session")}
        await upsert(db, model, {"session_id": session_id, **values}, ("session_id", key))
        return None
    try:
        row = await session_store.get_session(db, session_id, for_update=True)
    except NotFound:
        logger.warning("session %s is gone: its %s record is dropped", session_id, kind)
        return None
    current = SessionStatus(row.status)
    if kind == "started":
        if current is SessionStatus.PENDING:
            await session_store.mark_in_progress(
                db,
                session_id,
                call_sid=record["call_sid"],
                stream_sid=record["stream_sid"],
                started_at=datetime.fromisoformat(record["at"]),
                owner_process_id=record["owner"],
            )
        return None
    if current.is_terminal:
        if row.end_reason != record["end_reason"]:
            logger.warning(
                "session %s was already ended (%s, %s) when its own end (%s) was written",
                session_id,
                row.status,
                row.end_reason,
                record["end_reason"],
            )
        return None
    status = SessionStatus(record["status"])
    if current is SessionStatus.PENDING and status is SessionStatus.COMPLETED:
        status = SessionStatus.FAILED  # it never started: it cannot have completed
    row = await session_store.finish(
        db,
        session_id,
        status=status,
        end_reason=record["end_reason"],
        error=record["error"],
        ended_at=datetime.fromisoformat(record["at"]),
    )
    if record["first_response_ms"] is not None:
        row.first_response_ms = record["first_response_ms"]
    url = record["webhook_url"]
    if record.get("analysis") is not None:
        await enqueue_analysis(
            db,
            session_id=row.id,
            workspace_id=row.workspace_id,
            instance_id=row.instance_id,
            spec=CallAnalysis.model_validate(record["analysis"]),
            language=record.get("language", "en"),
            webhook_url=url,
        )
    if url is None:
        return None
    workspace = await db.get_one(Workspace, row.workspace_id)
    return _Ended(
        url, workspace.webhook_secret.encode(), session_id, status.value, record["end_reason"]
    )


def _resolve(batch: list[tuple[list[Record], asyncio.Future[None]]]) -> None:
    for _, future in batch:
        if not future.done():
            future.set_result(None)


class LedgerRecorder:
    """The runtime's `CallRecorder` (batching) for one session, writing through the ledger."""

    def __init__(self, ledger: SessionLedger, session_id: str) -> None:
        self._ledger = ledger
        self.session_id = session_id

    async def record_item(self, entry: TranscriptItem) -> None:
        await self.record_batch([entry], [])

    async def record_metrics(self, entry: TurnMetrics) -> None:
        await self.record_batch([], [entry])

    async def record_batch(
        self, items: Sequence[TranscriptItem], metrics_: Sequence[TurnMetrics]
    ) -> None:
        records = [item(self.session_id, entry) for entry in items]
        records += [metrics(self.session_id, entry) for entry in metrics_]
        await self._ledger.write(records)
