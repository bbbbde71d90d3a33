"""Sessions (one per call): created pending, then in progress, then completed or failed.

Every status change goes through `session_state.check_transition` with the row locked, so two
processes racing to finish the same call cannot both succeed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from voxline.ids import new_id
from voxline.store.errors import Conflict, NotFound
from voxline.store.models import SessionRow
from voxline.store.pagination import Page, paginate
from voxline.store.session_state import Channel, Direction, SessionStatus, check_transition
from voxline.store.types import utcnow


async def create_session(
    db: AsyncSession,
    *,
    workspace_id: str,
    agent_id: str,
    channel: Channel,
    direction: Direction,
    instance_id: str | None = None,
    from_number: str | None = None,
    to_number: str | None = None,
    call_sid: str | None = None,
) -> SessionRow:
    """A new pending session."""
    now = utcnow()
    row = SessionRow(
        id=new_id("sess"),
        workspace_id=workspace_id,
        agent_id=agent_id,
        instance_id=instance_id,
        channel=Channel(channel).value,
        direction=Direction(direction).value,
        status=SessionStatus.PENDING.value,
        from_number=from_number,
        to_number=to_number,
        call_sid=call_sid,
        created_at=now,
        updated_at=now,
    )
    db.add(row)
    await db.flush()
    return row


async def get_session(
    db: AsyncSession,
    session_id: str,
    *,
    workspace_id: str | None = None,
    for_update: bool = False,
) -> SessionRow:
    """The session (within `workspace_id` when given); `NotFound` otherwise."""
    statement = select(SessionRow).where(SessionRow.id == session_id)
    if workspace_id is not None:
        statement = statement.where(SessionRow.workspace_id == workspace_id)
    if for_update:
        statement = statement.with_for_update()
    row = await db.scalar(statement)
    if row is None:
        raise NotFound("session", session_id)
    return row


async def list_sessions(
    db: AsyncSession,
    workspace_id: str,
    *,
    agent_id: str | None = None,
    status: SessionStatus | None = None,
    direction: Direction | None = None,
    channel: Channel | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    limit: int,
    after: str | None,
) -> Page[SessionRow]:
    """The workspace's sessions, newest first, filtered by whichever of agent, status,
    direction, channel and creation time (`created_after <= created_at < created_before`)
    are given."""
    statement = select(SessionRow).where(SessionRow.workspace_id == workspace_id)
    if agent_id is not None:
        statement = statement.where(SessionRow.agent_id == agent_id)
    if status is not None:
        statement = statement.where(SessionRow.status == SessionStatus(status).value)
    if direction is not None:
        statement = statement.where(SessionRow.direction == Direction(direction).value)
    if channel is not None:
        statement = statement.where(SessionRow.channel == Channel(channel).value)
    if created_after is not None:
        statement = statement.where(SessionRow.created_at >= created_after)
    if created_before is not None:
        statement = statement.where(SessionRow.created_at < created_before)
    return await paginate(db, statement, SessionRow.id, limit=limit, after=after)


async def delete_session(db: AsyncSession, workspace_id: str, session_id: str) -> None:
    """Delete a finished session with its transcript and metrics; `Conflict` while it is
    still pending or in progress, `NotFound` if there is none in the workspace."""
    row = await get_session(db, session_id, workspace_id=workspace_id, for_update=True)
    if not SessionStatus(row.status).is_terminal:
        raise Conflict(f"session {session_id!r} is still {row.status}: end it first")
    await db.delete(row)
    await db.flush()


async def mark_in_progress(
    db: AsyncSession,
    session_id: str,
    *,
    call_sid: str | None = None,
    stream_sid: str | None = None,
    started_at: datetime | None = None,
    owner_process_id: str | None = None,
) -> SessionRow:
    """pending -> in_progress (run by process `owner_process_id`); `IllegalTransition` from
    any other status."""
    row = await _transition(db, session_id, SessionStatus.IN_PROGRESS)
    row.started_at = started_at or row.updated_at
    row.owner_process_id = owner_process_id
    if call_sid is not None:
        row.call_sid = call_sid
    if stream_sid is not None:
        row.stream_sid = stream_sid
    await db.flush()
    return row


async def finish(
    db: AsyncSession,
    session_id: str,
    *,
    status: SessionStatus,
    end_reason: str,
    error: str | None = None,
    ended_at: datetime | None = None,
    first_response_ms: float | None = None,
) -> SessionRow:
    """-> completed or failed, with why (and the call's first-response latency, when it
    spoke); `IllegalTransition` if already finished."""
    if not SessionStatus(status).is_terminal:
        raise ValueError(f"finish() takes a final status (completed or failed), not {status}")
    row = await _transition(db, session_id, SessionStatus(status))
    row.end_reason = end_reason
    row.error = error
    row.ended_at = ended_at or row.updated_at
    if first_response_ms is not None:
        row.first_response_ms = first_response_ms
    await db.flush()
    return row


async def _transition(db: AsyncSession, session_id: str, target: SessionStatus) -> SessionRow:
    row = await get_session(db, session_id, for_update=True)
    check_transition(session_id, SessionStatus(row.status), target)
    row.status = target.value
    row.updated_at = utcnow()
    return row


async def fail_stale_pending(db: AsyncSession, created_before: datetime) -> list[str]:
    """Mark sessions still pending since before `created_before` as failed ("never_connected"):
    their relay token has expired, so no stream can join them any more. Returns their IDs."""
    statement = (
        select(SessionRow)
        .where(
            SessionRow.status == SessionStatus.PENDING.value,
            SessionRow.created_at < created_before,
        )
        .with_for_update(skip_locked=True)
    )
    rows = (await db.scalars(statement)).all()
    now = utcnow()
    for row in rows:
        check_transition(row.id, SessionStatus.PENDING, SessionStatus.FAILED)
        row.status = SessionStatus.FAILED.value
        row.end_reason = "never_connected"
        row.error = "the media stream never connected before the relay token expired"
        row.ended_at = now
        row.updated_at = now
    await db.flush()
    return [row.id for row in rows]
