"""The outbound queue as the dispatcher sees it: claiming due tasks within the shared limits,
and finding attempts that need reconciling. Limits hold across processes because they are
counted here, in one transaction that holds the Twilio account's pacing row locked.

Claiming on PostgreSQL: the pacing row `FOR UPDATE` serializes claimers of one account (so
counts of live calls cannot race), due tasks are taken `FOR UPDATE SKIP LOCKED` (a task
locked by a status callback is left for the next round), and each claimed attempt is leased
to its process until its REST create is done. Right before each create, `confirm_slot`
reserves its moment in the account's pace, shared by every process through the same row.
SQLite runs one writer at a time anyway.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from voxline.store import tasks as task_store
from voxline.store.models import (
    BatchRow,
    DispatchPacingRow,
    TaskAttemptRow,
    TaskRow,
    Workspace,
)
from voxline.store.task_state import ATTEMPT_LIVE_VALUES, AttemptStatus, TaskStatus

_SCAN_FACTOR = 4
SEND_TOLERANCE_S = 0.1
"""Slots are spaced by (1 + this) / CPS, so that creates leaving up to this late after their
slot still never put more than the CPS in any second."""


def pace_interval(calls_per_second: float) -> timedelta:
    return timedelta(seconds=(1 + SEND_TOLERANCE_S) / calls_per_second)


@dataclass(frozen=True, slots=True)
class Claim:
    """An attempt this process must now create at Twilio (at a slot `confirm_slot` gives)."""

    task_id: str
    number: int
    to_number: str
    from_number: str
    machine_detection: str
    ring_timeout_seconds: int


async def lock_pacing(db: AsyncSession, account: str, now: datetime) -> DispatchPacingRow:
    """The account's pacing row (created if missing), locked until the transaction ends."""
    pacing = await db.get(DispatchPacingRow, account, with_for_update=True)
    if pacing is not None:
        return pacing
    dialect = db.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(DispatchPacingRow).values(account=account, next_slot_at=now)
    await db.execute(statement.on_conflict_do_nothing(index_elements=["account"]))
    return await db.get_one(DispatchPacingRow, account, with_for_update=True)


async def count_due(db: AsyncSession, now: datetime) -> int:
    """How many tasks are due now and waiting to be claimed (the queue's depth)."""
    count = await db.scalar(
        select(func.count())
        .select_from(TaskRow)
        .where(TaskRow.status == TaskStatus.WAITING.value, TaskRow.next_attempt_at <= now)
    )
    return int(count or 0)


async def claim_due(
    db: AsyncSession,
    *,
    owner: str,
    account: str,
    calls_per_second: float,
    horizon: timedelta,
    lease: timedelta,
    now: datetime,
    in_flight: int = 0,
    limit: int = 200,
) -> list[Claim]:
    """Claim the tasks due now that the limits let through, about as many as the pace lets
    this process create within `horizon` (less the `in_flight` creates it still has); tasks
    due outside their calling window are moved to its next opening instead."""
    await lock_pacing(db, account, now)
    per_horizon = max(1, int(calls_per_second * horizon.total_seconds()))
    capacity = min(limit, per_horizon - in_flight)
    if capacity <= 0:
        return []
    due = list(
        await db.scalars(
            select(TaskRow)
            .where(TaskRow.status == TaskStatus.WAITING.value, TaskRow.next_attempt_at <= now)
            .order_by(TaskRow.next_attempt_at)
            .limit(capacity * _SCAN_FACTOR)
            .with_for_update(skip_locked=True)
        )
    )
    if not due:
        return []
    room = await _Room.load(db, due)
    claims: list[Claim] = []
    for task in due:
        window = task_store.window_of(task)
        if window is not None:
            opening = window.next_opening(now)
            if opening > now:
                task.next_attempt_at = opening
                continue
        if not room.admits(task):
            continue
        lease_until = now + horizon + lease
        attempt = task_store.new_attempt(task, owner=owner, lease_until=lease_until)
        db.add(attempt)
        task.attempt_count += 1
        task_store.set_task_status(task, TaskStatus.DIALING, now=now)
        claims.append(
            Claim(
                task_id=task.id,
                number=attempt.number,
                to_number=task.to_number,
                from_number=task.from_number,
                machine_detection=task.machine_detection,
                ring_timeout_seconds=task.ring_timeout_seconds,
            )
        )
        if len(claims) >= capacity:
            break
    await db.flush()
    return claims


class _Room:
    """Live calls per workspace and per batch against their caps, updated as tasks are
    admitted."""

    def __init__(
        self,
        workspace_caps: dict[str, int],
        batch_caps: dict[str, int | None],
        live_workspaces: Counter[str],
        live_batches: Counter[str],
    ) -> None:
        self._workspace_caps = workspace_caps
        self._batch_caps = batch_caps
        self._live_workspaces = live_workspaces
        self._live_batches = live_batches

    @classmethod
    async def load(cls, db: AsyncSession, tasks: list[TaskRow]) -> _Room:
        workspace_ids = sorted({task.workspace_id for task in tasks})
        batch_ids = sorted({task.batch_id for task in tasks if task.batch_id is not None})
        caps: dict[str, int] = {
            workspace_id: cap
            for workspace_id, cap in await db.execute(
                select(Workspace.id, Workspace.max_concurrent_calls).where(
                    Workspace.id.in_(workspace_ids)
                )
            )
        }
        live_workspaces: Counter[str] = Counter()
        for workspace_id, count in await db.execute(
            select(TaskAttemptRow.workspace_id, func.count())
            .where(
                TaskAttemptRow.status.in_(ATTEMPT_LIVE_VALUES),
                TaskAttemptRow.workspace_id.in_(workspace_ids),
            )
            .group_by(TaskAttemptRow.workspace_id)
        ):
            live_workspaces[workspace_id] = count
        batch_caps: dict[str, int | None] = {}
        live_batches: Counter[str] = Counter()
        if batch_ids:
            batch_caps = {
                batch_id: cap
                for batch_id, cap in await db.execute(
                    select(BatchRow.id, BatchRow.max_concurrency).where(BatchRow.id.in_(batch_ids))
                )
            }
            rows = await db.execute(
                select(TaskAttemptRow.batch_id, func.count())
                .where(
                    TaskAttemptRow.status.in_(ATTEMPT_LIVE_VALUES),
                    TaskAttemptRow.batch_id.in_(batch_ids),
                )
                .group_by(TaskAttemptRow.batch_id)
            )
            for batch_id, count in rows:
                if batch_id is not None:
                    live_batches[batch_id] = count
        return cls(caps, batch_caps, live_workspaces, live_batches)

    def admits(self, task: TaskRow) -> bool:
        if self._live_workspaces[task.workspace_id] >= self._workspace_caps.get(
            task.workspace_id, 0
        ):
            return False
        if task.batch_id is not None:
            cap = self._batch_caps.get(task.batch_id)
            if cap is not None and self._live_batches[task.batch_id] >= cap:
                return False
            self._live_batches[task.batch_id] += 1
        self._live_workspaces[task.workspace_id] += 1
        return True


async def confirm_slot(
    db: AsyncSession,
    *,
    owner: str,
    account: str,
    claim: Claim,
    calls_per_second: float,
    lease: timedelta,
    now: datetime,
) -> datetime | None:
    """Right before a create: reserve its slot in the account's pace (now, or as soon as the
    pace allows) and renew the attempt's lease past it; None when the attempt is no longer
    this process's to create (reconciled by another process)."""
    attempt = await db.get(TaskAttemptRow, (claim.task_id, claim.number), with_for_update=True)
    if (
        attempt is None
        or attempt.lease_owner != owner
        or attempt.call_sid is not None
        or attempt.status != AttemptStatus.DIALING.value
    ):
        return None
    pacing = await lock_pacing(db, account, now)
    slot = max(now, pacing.next_slot_at)
    pacing.next_slot_at = slot + pace_interval(calls_per_second)
    attempt.lease_expires_at = slot + lease
    return slot


async def claim_expired(
    db: AsyncSession, *, owner: str, lease: timedelta, now: datetime, limit: int = 20
) -> list[tuple[TaskAttemptRow, TaskRow]]:
    """Attempts whose create lease ran out without a CallSid (their process died or Twilio
    answered an error), re-leased to `owner` for reconciling."""
    attempts = list(
        await db.scalars(
            select(TaskAttemptRow)
            .where(
                TaskAttemptRow.status == AttemptStatus.DIALING.value,
                TaskAttemptRow.call_sid.is_(None),
                TaskAttemptRow.lease_expires_at < now,
            )
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    out = []
    for attempt in attempts:
        attempt.lease_owner = owner
        attempt.lease_expires_at = now + lease
        task = await db.get_one(TaskRow, attempt.task_id)
        out.append((attempt, task))
    await db.flush()
    return out


async def stale_live(
    db: AsyncSession, *, older_than: datetime, limit: int = 50
) -> list[tuple[str, str]]:
    """(task ID, CallSid) of live calls without news since `older_than`."""
    rows = await db.execute(
        select(TaskAttemptRow.task_id, TaskAttemptRow.call_sid)
        .where(
            TaskAttemptRow.status.in_(ATTEMPT_LIVE_VALUES),
            TaskAttemptRow.call_sid.is_not(None),
            TaskAttemptRow.updated_at < older_than,
        )
        .limit(limit)
    )
    return [(task_id, call_sid) for task_id, call_sid in rows if call_sid is not None]
