"""Server processes and their heartbeats: who owns which live session, and who is gone.

Each process upserts its row every few seconds. A process whose row is older than the
timeout (or missing) is dead: any other process ends its in-progress sessions as
`failed/server_crash`, keeping whatever transcript was stored. Rows are claimed with
`FOR UPDATE SKIP LOCKED`, so several processes sweeping at once end each session once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from voxline.store.models import ProcessHeartbeat, SessionRow
from voxline.store.session_state import SessionStatus, check_transition
from voxline.store.upsert import upsert

CRASH_REASON = "server_crash"


async def beat(db: AsyncSession, process_id: str, *, host: str, pid: int, now: datetime) -> None:
    """Record that `process_id` is alive at `now` (its first beat registers it)."""
    values = {"id": process_id, "host": host, "pid": pid, "started_at": now, "beat_at": now}
    await upsert(db, ProcessHeartbeat, values, ("id",), update=("beat_at",))


async def end_orphaned_sessions(
    db: AsyncSession, *, alive_since: datetime, now: datetime
) -> list[SessionRow]:
    """End the in-progress sessions whose owner has not beaten since `alive_since` as
    failed/server_crash; forget such processes once they own nothing. Returns the sessions."""
    alive = select(ProcessHeartbeat.id).where(ProcessHeartbeat.beat_at >= alive_since)
    statement = (
        select(SessionRow)
        .where(
            SessionRow.status == SessionStatus.IN_PROGRESS.value,
            SessionRow.owner_process_id.is_not(None),
            SessionRow.owner_process_id.not_in(alive),
        )
        .with_for_update(skip_locked=True)
    )
    rows = (await db.scalars(statement)).all()
    for row in rows:
        check_transition(row.id, SessionStatus.IN_PROGRESS, SessionStatus.FAILED)
        row.status = SessionStatus.FAILED.value
        row.end_reason = CRASH_REASON
        row.error = "the server process running the call stopped without ending it"
        row.ended_at = now
        row.updated_at = now
    await db.flush()
    owning = select(SessionRow.owner_process_id).where(
        SessionRow.status == SessionStatus.IN_PROGRESS.value,
        SessionRow.owner_process_id.is_not(None),
    )
    await db.execute(
        delete(ProcessHeartbeat).where(
            ProcessHeartbeat.beat_at < alive_since, ProcessHeartbeat.id.not_in(owning)
        )
    )
    return list(rows)


async def forget(db: AsyncSession, process_id: str) -> None:
    """Remove a process that stops cleanly (its sessions all ended) from the heartbeats."""
    await db.execute(delete(ProcessHeartbeat).where(ProcessHeartbeat.id == process_id))
