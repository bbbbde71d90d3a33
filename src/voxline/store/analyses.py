"""Post-call analyses: one row per session, both the job and its result.

pending --claim--> running --complete--> done
   ^                  |  \\--fail-------> failed
   +--retry, release--+   (lease expired: claimable again, like pending)

A claim takes the row under a lease and a fresh claim token; only the holder of the current
token may renew, finish or put back the job, so a worker that lost its lease (it stalled, or
its process died and another took over) cannot overwrite the newer attempt. On PostgreSQL
claims skip rows another transaction holds (`FOR UPDATE SKIP LOCKED`), so many processes
share the queue; on SQLite every write transaction is exclusive, which gives the same result.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from voxline.agent_spec import CallAnalysis
from voxline.store.models import SessionAnalysisRow
from voxline.store.types import utcnow


class AnalysisStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SessionAnalysis:
    """A session's analysis as the API and webhooks show it."""

    status: AnalysisStatus
    summary: str | None
    data: Any
    success: bool | None
    error: str | None


@dataclass(frozen=True, slots=True)
class ClaimedAnalysis:
    """A job this worker holds: what to analyse and the token that proves the claim."""

    session_id: str
    workspace_id: str
    instance_id: str | None
    spec: CallAnalysis
    language: str
    webhook_url: str | None
    attempts: int
    claim: str


async def enqueue_analysis(
    db: AsyncSession,
    *,
    session_id: str,
    workspace_id: str,
    instance_id: str | None,
    spec: CallAnalysis,
    language: str,
    webhook_url: str | None,
) -> SessionAnalysisRow:
    """A pending analysis of the session with `spec` (whose `llm` must be set)."""
    if spec.llm is None:
        raise ValueError("enqueue_analysis() needs the analysis LLM resolved")
    now = utcnow()
    row = SessionAnalysisRow(
        session_id=session_id,
        workspace_id=workspace_id,
        instance_id=instance_id,
        spec=spec.model_dump(mode="json"),
        language=language,
        webhook_url=webhook_url,
        status=AnalysisStatus.PENDING.value,
        attempts=0,
        available_at=now,
        created_at=now,
        updated_at=now,
    )
    db.add(row)
    await db.flush()
    return row


async def claim_analyses(
    db: AsyncSession, *, limit: int, lease: timedelta
) -> list[ClaimedAnalysis]:
    """Up to `limit` jobs that are due (pending and available, or running with an expired
    lease), oldest first, now running under a new lease and claim token each."""
    now = utcnow()
    statement = (
        select(SessionAnalysisRow)
        .where(
            or_(
                (SessionAnalysisRow.status == AnalysisStatus.PENDING.value)
                & (SessionAnalysisRow.available_at <= now),
                (SessionAnalysisRow.status == AnalysisStatus.RUNNING.value)
                & (SessionAnalysisRow.lease_expires_at < now),
            )
        )
        .order_by(SessionAnalysisRow.available_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows: Sequence[SessionAnalysisRow] = (await db.scalars(statement)).all()
    claimed = []
    for row in rows:
        row.status = AnalysisStatus.RUNNING.value
        row.attempts += 1
        row.claim = uuid.uuid4().hex
        row.lease_expires_at = now + lease
        row.updated_at = now
        claimed.append(
            ClaimedAnalysis(
                session_id=row.session_id,
                workspace_id=row.workspace_id,
                instance_id=row.instance_id,
                spec=CallAnalysis.model_validate(row.spec),
                language=row.language,
                webhook_url=row.webhook_url,
                attempts=row.attempts,
                claim=row.claim,
            )
        )
    await db.flush()
    return claimed


async def held(db: AsyncSession, job: ClaimedAnalysis) -> SessionAnalysisRow | None:
    """The job's row, locked, if `job`'s claim is still the current one; else None."""
    statement = (
        select(SessionAnalysisRow)
        .where(
            SessionAnalysisRow.session_id == job.session_id,
            SessionAnalysisRow.status == AnalysisStatus.RUNNING.value,
            SessionAnalysisRow.claim == job.claim,
        )
        .with_for_update()
    )
    return await db.scalar(statement)


async def renew_lease(db: AsyncSession, job: ClaimedAnalysis, lease: timedelta) -> bool:
    """Extend the job's lease; False if the claim was lost."""
    row = await held(db, job)
    if row is None:
        return False
    row.lease_expires_at = utcnow() + lease
    await db.flush()
    return True


async def complete(
    db: AsyncSession,
    row: SessionAnalysisRow,
    *,
    summary: str,
    data: Any,
    success: bool | None,
) -> None:
    """running -> done with the result (`row` from `held`)."""
    _finish(row, AnalysisStatus.DONE)
    row.summary = summary
    row.data = data
    row.success = success
    row.error = None
    await db.flush()


async def fail(db: AsyncSession, row: SessionAnalysisRow, error: str) -> None:
    """running -> failed, for good, with why (`row` from `held`)."""
    _finish(row, AnalysisStatus.FAILED)
    row.error = error
    await db.flush()


async def retry_later(
    db: AsyncSession, row: SessionAnalysisRow, error: str, delay: timedelta
) -> None:
    """running -> pending, claimable again after `delay`, keeping the last error."""
    now = utcnow()
    row.status = AnalysisStatus.PENDING.value
    row.error = error
    row.claim = None
    row.lease_expires_at = None
    row.available_at = now + delay
    row.updated_at = now
    await db.flush()


async def release(db: AsyncSession, row: SessionAnalysisRow) -> None:
    """running -> pending at once, the attempt not counted: its worker is shutting down."""
    now = utcnow()
    row.status = AnalysisStatus.PENDING.value
    row.attempts = max(0, row.attempts - 1)
    row.claim = None
    row.lease_expires_at = None
    row.available_at = now
    row.updated_at = now
    await db.flush()


def _finish(row: SessionAnalysisRow, status: AnalysisStatus) -> None:
    now = utcnow()
    row.status = status.value
    row.claim = None
    row.lease_expires_at = None
    row.completed_at = now
    row.updated_at = now


async def session_analysis(db: AsyncSession, session_id: str) -> SessionAnalysis | None:
    """The session's analysis (None when its agent had no `analysis` section). Public for
    whatever reports on a session: the sessions API, the session and task webhooks."""
    row = await db.get(SessionAnalysisRow, session_id)
    if row is None:
        return None
    return analysis_of(row)


def analysis_of(row: SessionAnalysisRow) -> SessionAnalysis:
    return SessionAnalysis(
        status=AnalysisStatus(row.status),
        summary=row.summary,
        data=row.data,
        success=row.success,
        error=row.error,
    )


def analysis_json(analysis: SessionAnalysis) -> dict[str, Any]:
    """The analysis as the API and webhooks spell it (camelCase keys)."""
    return {
        "status": analysis.status.value,
        "summary": analysis.summary,
        "data": analysis.data,
        "success": analysis.success,
        "error": analysis.error,
    }
