"""Outbound tasks, their attempts and batches: created, listed, moved through
`task_state`, with the row locked for every status change."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from voxline.dispatch.retry import RetryPolicy
from voxline.dispatch.windows import CallingWindow
from voxline.ids import new_id
from voxline.store.errors import NotFound
from voxline.store.models import BatchRow, TaskAttemptRow, TaskRow
from voxline.store.pagination import Page, paginate
from voxline.store.task_state import (
    ATTEMPT_LIVE_VALUES,
    AttemptStatus,
    TaskStatus,
    check_attempt_transition,
    check_task_transition,
)
from voxline.store.types import utcnow


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """How a task (or every task of a batch) is dialed."""

    calling_window: CallingWindow | None = None
    max_attempts: int = 1
    retry_on: frozenset[AttemptStatus] = frozenset()
    backoff_seconds: int = 600
    machine_detection: str = "off"
    voicemail_message: str | None = None
    ring_timeout_seconds: int = 30


@dataclass(frozen=True, slots=True)
class NewTask:
    to_number: str
    instance_id: str | None = None
    variables: dict[str, str] | None = None
    metadata: dict[str, Any] | None = None


def window_of(task: TaskRow) -> CallingWindow | None:
    return CallingWindow.from_json(task.calling_window) if task.calling_window else None


def retry_policy_of(task: TaskRow) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=task.max_attempts,
        on=frozenset(AttemptStatus(value) for value in task.retry_on),
        backoff_seconds=task.backoff_seconds,
    )


async def create_tasks(
    db: AsyncSession,
    *,
    workspace_id: str,
    agent_id: str,
    from_number: str,
    tasks: Sequence[NewTask],
    options: TaskOptions,
    scheduled_at: datetime | None = None,
    batch_id: str | None = None,
) -> list[TaskRow]:
    """New waiting tasks, due at `scheduled_at` (now) or their window's next opening."""
    now = utcnow()
    scheduled = scheduled_at or now
    window = options.calling_window
    due = window.next_opening(scheduled) if window is not None else scheduled
    rows = [
        TaskRow(
            id=new_id("task"),
            workspace_id=workspace_id,
            agent_id=agent_id,
            instance_id=task.instance_id,
            batch_id=batch_id,
            to_number=task.to_number,
            from_number=from_number,
            variables=dict(task.variables or {}),
            status=TaskStatus.WAITING.value,
            scheduled_at=scheduled,
            next_attempt_at=due,
            calling_window=window.to_json() if window is not None else None,
            max_attempts=options.max_attempts,
            retry_on=sorted(status.value for status in options.retry_on),
            backoff_seconds=options.backoff_seconds,
            machine_detection=options.machine_detection,
            voicemail_message=options.voicemail_message,
            ring_timeout_seconds=options.ring_timeout_seconds,
            metadata_=dict(task.metadata or {}),
            attempt_count=0,
            throttled=0,
            cancel_requested=False,
            created_at=now,
            updated_at=now,
        )
        for task in tasks
    ]
    db.add_all(rows)
    await db.flush()
    return rows


async def create_batch(
    db: AsyncSession,
    *,
    workspace_id: str,
    agent_id: str,
    from_number: str,
    max_concurrency: int | None,
    metadata: dict[str, Any] | None = None,
) -> BatchRow:
    row = BatchRow(
        id=new_id("batch"),
        workspace_id=workspace_id,
        agent_id=agent_id,
        from_number=from_number,
        max_concurrency=max_concurrency,
        metadata_=dict(metadata or {}),
        created_at=utcnow(),
    )
    db.add(row)
    await db.flush()
    return row


async def get_task(
    db: AsyncSession,
    task_id: str,
    *,
    workspace_id: str | None = None,
    for_update: bool = False,
) -> TaskRow:
    """The task (within `workspace_id` when given); `NotFound` otherwise."""
    statement = select(TaskRow).where(TaskRow.id == task_id)
    if workspace_id is not None:
        statement = statement.where(TaskRow.workspace_id == workspace_id)
    if for_update:
        statement = statement.with_for_update()
    row = await db.scalar(statement)
    if row is None:
        raise NotFound("task", task_id)
    return row


async def get_batch(db: AsyncSession, batch_id: str, *, workspace_id: str) -> BatchRow:
    row = await db.scalar(
        select(BatchRow).where(BatchRow.id == batch_id, BatchRow.workspace_id == workspace_id)
    )
    if row is None:
        raise NotFound("batch", batch_id)
    return row


async def batch_counts(db: AsyncSession, batch_id: str) -> dict[TaskStatus, int]:
    """How many of the batch's tasks are in each status (every status listed)."""
    result = await db.execute(
        select(TaskRow.status, func.count())
        .where(TaskRow.batch_id == batch_id)
        .group_by(TaskRow.status)
    )
    counts = dict.fromkeys(TaskStatus, 0)
    for status, count in result:
        counts[TaskStatus(status)] = int(count)
    return counts


async def list_tasks(
    db: AsyncSession,
    workspace_id: str,
    *,
    status: TaskStatus | None = None,
    agent_id: str | None = None,
    batch_id: str | None = None,
    limit: int,
    after: str | None,
) -> Page[TaskRow]:
    """The workspace's tasks, newest first, optionally filtered."""
    statement = select(TaskRow).where(TaskRow.workspace_id == workspace_id)
    if status is not None:
        statement = statement.where(TaskRow.status == TaskStatus(status).value)
    if agent_id is not None:
        statement = statement.where(TaskRow.agent_id == agent_id)
    if batch_id is not None:
        statement = statement.where(TaskRow.batch_id == batch_id)
    return await paginate(db, statement, TaskRow.id, limit=limit, after=after)


async def attempts_of(db: AsyncSession, task_ids: Sequence[str]) -> dict[str, list[TaskAttemptRow]]:
    """Each task's attempts, in order."""
    out: dict[str, list[TaskAttemptRow]] = {task_id: [] for task_id in task_ids}
    if not task_ids:
        return out
    rows = await db.scalars(
        select(TaskAttemptRow)
        .where(TaskAttemptRow.task_id.in_(task_ids))
        .order_by(TaskAttemptRow.task_id, TaskAttemptRow.number)
    )
    for row in rows:
        out[row.task_id].append(row)
    return out


async def live_attempt(
    db: AsyncSession, task_id: str, *, for_update: bool = False
) -> TaskAttemptRow | None:
    """The task's attempt still dialing, ringing or in progress, if any."""
    statement = select(TaskAttemptRow).where(
        TaskAttemptRow.task_id == task_id, TaskAttemptRow.status.in_(ATTEMPT_LIVE_VALUES)
    )
    if for_update:
        statement = statement.with_for_update()
    return await db.scalar(statement.order_by(TaskAttemptRow.number.desc()).limit(1))


async def attempt_by_call_sid(db: AsyncSession, call_sid: str) -> TaskAttemptRow | None:
    return await db.scalar(
        select(TaskAttemptRow).where(TaskAttemptRow.call_sid == call_sid).with_for_update()
    )


async def attempt_by_session(db: AsyncSession, session_id: str) -> TaskAttemptRow | None:
    return await db.scalar(select(TaskAttemptRow).where(TaskAttemptRow.session_id == session_id))


def set_task_status(task: TaskRow, target: TaskStatus, *, now: datetime | None = None) -> None:
    """Move `task` (locked by the caller) to `target`; `IllegalTaskTransition` otherwise."""
    check_task_transition(task.id, TaskStatus(task.status), target)
    task.status = target.value
    task.updated_at = now or utcnow()
    if target.is_terminal:
        task.ended_at = task.updated_at
        task.next_attempt_at = None


def set_attempt_status(
    attempt: TaskAttemptRow, target: AttemptStatus, *, now: datetime | None = None
) -> None:
    """Move `attempt` (locked by the caller) to `target`; `IllegalTaskTransition` otherwise."""
    what = f"attempt {attempt.number} of task {attempt.task_id!r}"
    check_attempt_transition(what, AttemptStatus(attempt.status), target)
    attempt.status = target.value
    attempt.updated_at = now or utcnow()
    if target is AttemptStatus.IN_PROGRESS and attempt.answered_at is None:
        attempt.answered_at = attempt.updated_at
    if target.is_terminal:
        attempt.ended_at = attempt.updated_at
        attempt.lease_owner = None
        attempt.lease_expires_at = None


def new_attempt(task: TaskRow, *, owner: str, lease_until: datetime) -> TaskAttemptRow:
    """The task's next attempt, leased to `owner` until its REST create is done (the caller
    adds it and moves the task to dialing)."""
    now = utcnow()
    return TaskAttemptRow(
        task_id=task.id,
        number=task.attempt_count + 1,
        workspace_id=task.workspace_id,
        batch_id=task.batch_id,
        status=AttemptStatus.DIALING.value,
        amd_pending=False,
        lease_owner=owner,
        lease_expires_at=lease_until,
        started_at=now,
        updated_at=now,
    )


async def task_variables(db: AsyncSession, session_id: str) -> dict[str, str]:
    """The variables of the task whose call is the session (merged over the instance's)."""
    attempt = await attempt_by_session(db, session_id)
    if attempt is None:
        return {}
    task = await db.get(TaskRow, attempt.task_id)
    return dict(task.variables) if task is not None else {}


async def recent_tasks(
    db: AsyncSession,
    *,
    workspace_ids: list[str] | None,
    status: TaskStatus | None,
    agent_id: str | None,
    batch_id: str | None,
    limit: int,
) -> list[TaskRow]:
    """The newest tasks across workspaces (the command line's view), optionally filtered."""
    statement = select(TaskRow)
    if workspace_ids is not None:
        statement = statement.where(TaskRow.workspace_id.in_(workspace_ids))
    if status is not None:
        statement = statement.where(TaskRow.status == TaskStatus(status).value)
    if agent_id is not None:
        statement = statement.where(TaskRow.agent_id == agent_id)
    if batch_id is not None:
        statement = statement.where(TaskRow.batch_id == batch_id)
    return list(await db.scalars(statement.order_by(TaskRow.id.desc()).limit(limit)))
