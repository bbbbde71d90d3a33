"""What happens to a task when one of its calls moves on: Twilio's status callbacks and
machine verdicts, a refused create, a cancel. Every function runs inside the caller's
transaction with the task row locked, and queues the webhooks it causes in the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from voxline.dispatch import events
from voxline.store import tasks as task_store
from voxline.store.models import TaskAttemptRow, TaskCallbackRow, TaskRow
from voxline.store.task_state import AttemptStatus, TaskStatus, is_forward, task_status_of
from voxline.store.types import utcnow

# Twilio's CallStatus -> our attempt status.
_CALL_STATUS: dict[str, AttemptStatus] = {
    "queued": AttemptStatus.DIALING,
    "initiated": AttemptStatus.DIALING,
    "ringing": AttemptStatus.RINGING,
    "in-progress": AttemptStatus.IN_PROGRESS,
    "answered": AttemptStatus.IN_PROGRESS,
    "completed": AttemptStatus.COMPLETED,
    "busy": AttemptStatus.BUSY,
    "no-answer": AttemptStatus.NO_ANSWER,
    "failed": AttemptStatus.FAILED,
    "canceled": AttemptStatus.CANCELED,
}
MACHINE_END = frozenset({"machine_end_beep", "machine_end_silence", "machine_end_other"})
_MACHINE = MACHINE_END | {"machine_start", "fax"}

MachineAction = Literal["hang_up", "leave_message"]


@dataclass(frozen=True, slots=True)
class CallbackResult:
    """What the caller must still do once the transaction committed."""

    machine_action: MachineAction | None = None
    session_id: str | None = None
    call_sid: str | None = None
    voicemail_message: str | None = None


def is_machine(answered_by: str | None) -> bool:
    return answered_by in _MACHINE


async def find_attempt(db: AsyncSession, task: TaskRow, call_sid: str) -> TaskAttemptRow | None:
    """The attempt of `call_sid`; else the task's live attempt that has no CallSid yet (the
    callback beat the create's answer, or its process died before writing it): adopted."""
    attempt = await task_store.attempt_by_call_sid(db, call_sid) if call_sid else None
    if attempt is not None:
        return attempt if attempt.task_id == task.id else None
    live = await task_store.live_attempt(db, task.id, for_update=True)
    if live is not None and live.call_sid is None and call_sid:
        live.call_sid = call_sid
        live.lease_owner = None
        live.lease_expires_at = None
        return live
    return None


async def _first_time(db: AsyncSession, call_sid: str, event: str) -> bool:
    """Record `event` of `call_sid` as applied; False if it already was."""
    seen = await db.scalar(
        select(TaskCallbackRow).where(
            TaskCallbackRow.call_sid == call_sid, TaskCallbackRow.event == event
        )
    )
    if seen is not None:
        return False
    db.add(TaskCallbackRow(call_sid=call_sid, event=event, received_at=utcnow()))
    await db.flush()
    return True


async def apply_status_callback(
    db: AsyncSession, task: TaskRow, params: dict[str, str]
) -> CallbackResult:
    """Apply one status callback or machine verdict (task row locked by the caller)."""
    call_sid = params.get("CallSid", "")
    answered_by = params.get("AnsweredBy")
    call_status = params.get("CallStatus")
    sequence = params.get("SequenceNumber")
    if answered_by and call_status is None:
        event = "amd"
    elif sequence is not None:
        event = f"seq:{sequence}"
    else:
        event = f"status:{call_status}"
    attempt = await find_attempt(db, task, call_sid)
    if attempt is None or not call_sid:
        return CallbackResult()
    if not await _first_time(db, call_sid, event):
        return CallbackResult()
    now = utcnow()
    if event == "amd":
        return await _machine_verdict(db, task, attempt, answered_by or "unknown", now)
    if answered_by and attempt.answered_by is None:
        attempt.answered_by = answered_by
    target = _CALL_STATUS.get(call_status or "")
    if target is None or not is_forward(AttemptStatus(attempt.status), target):
        return CallbackResult()
    if target.is_terminal:
        _fill_final(attempt, params)
        if target is AttemptStatus.COMPLETED and is_machine(attempt.answered_by):
            target = AttemptStatus.VOICEMAIL
        if task.cancel_requested:
            target = AttemptStatus.CANCELED
        await end_attempt(db, task, attempt, target, now)
        return CallbackResult()
    task_store.set_attempt_status(attempt, target, now=now)
    if TaskStatus(task.status).is_live and is_forward(AttemptStatus(task.status), target):
        task_store.set_task_status(task, task_status_of(target), now=now)
    return CallbackResult()


async def _machine_verdict(
    db: AsyncSession, task: TaskRow, attempt: TaskAttemptRow, answered_by: str, now: datetime
) -> CallbackResult:
    attempt.answered_by = answered_by
    attempt.updated_at = now
    if AttemptStatus(attempt.status).is_terminal or not is_machine(answered_by):
        return CallbackResult()
    if task.machine_detection == "hang_up":
        action: MachineAction = "hang_up"
    elif task.machine_detection == "leave_message" and answered_by in MACHINE_END:
        action = "leave_message"
    else:
        return CallbackResult()
    attempt.amd_pending = True
    return CallbackResult(
        machine_action=action,
        session_id=attempt.session_id,
        call_sid=attempt.call_sid,
        voicemail_message=task.voicemail_message,
    )


def _fill_final(attempt: TaskAttemptRow, params: dict[str, str]) -> None:
    duration = params.get("CallDuration")
    if duration and duration.isdigit():
        attempt.duration_seconds = int(duration)
    sip = params.get("SipResponseCode")
    if sip and sip.isdigit():
        attempt.sip_response_code = int(sip)
    code = params.get("ErrorCode")
    if code and code.isdigit():
        attempt.error_code = int(code)
        attempt.error_message = params.get("ErrorMessage") or attempt.error_message


async def end_attempt(
    db: AsyncSession,
    task: TaskRow,
    attempt: TaskAttemptRow,
    outcome: AttemptStatus,
    now: datetime,
    *,
    ended_reason: str | None = None,
    retry: bool = True,
) -> None:
    """Finish `attempt`; the retry policy decides whether the task waits for another. The
    webhooks show the task as it is after that decision."""
    task_store.set_attempt_status(attempt, outcome, now=now)
    attempt.amd_pending = False
    attempts = (await task_store.attempts_of(db, [task.id]))[task.id]
    if TaskStatus(task.status).is_terminal:
        # Canceled while the call was live: the task has already ended.
        await events.attempt_ended(db, task, attempt, attempts)
        return
    due = (
        task_store.retry_policy_of(task).next_attempt_at(
            outcome, task.attempt_count, now, task_store.window_of(task)
        )
        if retry
        else None
    )
    if due is not None:
        task_store.set_task_status(task, TaskStatus.WAITING, now=now)
        task.next_attempt_at = due
        await events.attempt_ended(db, task, attempt, attempts)
        return
    task_store.set_task_status(task, TaskStatus(outcome.value), now=now)
    task.ended_reason = ended_reason or outcome.value
    await events.attempt_ended(db, task, attempt, attempts)
    await events.task_ended(db, task, attempts)


async def request_cancel(db: AsyncSession, task: TaskRow) -> TaskAttemptRow | None:
    """Cancel `task` (locked): it ends `canceled` now; returns the live attempt whose call
    must be hung up through Twilio, if any (a create still in flight is hung up by the
    dispatcher once it returns)."""
    status = TaskStatus(task.status)
    if status.is_terminal:
        return None
    now = utcnow()
    task.cancel_requested = True
    attempt = (
        await task_store.live_attempt(db, task.id, for_update=True) if status.is_live else None
    )
    task_store.set_task_status(task, TaskStatus.CANCELED, now=now)
    task.ended_reason = "canceled"
    attempts = (await task_store.attempts_of(db, [task.id]))[task.id]
    await events.task_ended(db, task, attempts)
    return attempt
