"""Tasks, attempts and batches as the API returns them and webhooks carry them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from voxline.api.models import ApiModel
from voxline.store.models import BatchRow, TaskAttemptRow, TaskRow
from voxline.store.task_state import AttemptStatus, TaskStatus


class CallingWindowView(ApiModel):
    timezone: str = Field(description="IANA time zone of the callee, e.g. America/New_York.")
    days: list[str] = Field(description="Weekdays the window opens: mon..sun.")
    start: str = Field(description="HH:MM, local time.")
    end: str = Field(description="HH:MM, local time; not after start: closes the next day.")


class RetryView(ApiModel):
    max_attempts: int
    on: list[str]
    backoff_seconds: int


class TaskAttempt(ApiModel):
    number: int = Field(description="1 for the first call, 2 for the first retry, ...")
    call_sid: str | None
    status: AttemptStatus
    answered_by: str | None = Field(description="Twilio's machine-detection verdict.")
    sip_response_code: int | None
    session_id: str | None = Field(
        description="The conversation (sess_...): its transcript is at GET /v1/sessions/{id}."
    )
    error_code: int | None = Field(description="Twilio's error code when it refused the call.")
    error_message: str | None
    started_at: datetime
    ended_at: datetime | None
    duration_seconds: int | None


class Task(ApiModel):
    id: str = Field(description="task_...")
    status: TaskStatus
    agent_id: str
    instance_id: str | None
    batch_id: str | None
    to_number: str = Field(serialization_alias="to")
    from_number: str = Field(serialization_alias="from")
    variables: dict[str, str]
    scheduled_at: datetime
    next_attempt_at: datetime | None = Field(description="When the next call is due (waiting).")
    calling_window: CallingWindowView | None
    retry: RetryView
    machine_detection: str
    voicemail_message: str | None
    ring_timeout_seconds: int
    ended_reason: str | None
    metadata: dict[str, Any]
    attempts: list[TaskAttempt]
    created_at: datetime
    ended_at: datetime | None


class BatchView(ApiModel):
    id: str = Field(description="batch_...")
    agent_id: str
    from_number: str = Field(serialization_alias="from")
    max_concurrency: int | None
    metadata: dict[str, Any]
    total: int
    counts: dict[TaskStatus, int] = Field(description="How many tasks are in each status.")
    created_at: datetime
    canceled_at: datetime | None


def attempt_view(row: TaskAttemptRow) -> TaskAttempt:
    return TaskAttempt(
        number=row.number,
        call_sid=row.call_sid,
        status=AttemptStatus(row.status),
        answered_by=row.answered_by,
        sip_response_code=row.sip_response_code,
        session_id=row.session_id,
        error_code=row.error_code,
        error_message=row.error_message,
        started_at=row.started_at,
        ended_at=row.ended_at,
        duration_seconds=row.duration_seconds,
    )


def task_view(row: TaskRow, attempts: list[TaskAttemptRow]) -> Task:
    return Task(
        id=row.id,
        status=TaskStatus(row.status),
        agent_id=row.agent_id,
        instance_id=row.instance_id,
        batch_id=row.batch_id,
        to_number=row.to_number,
        from_number=row.from_number,
        variables=dict(row.variables),
        scheduled_at=row.scheduled_at,
        next_attempt_at=row.next_attempt_at,
        calling_window=(
            CallingWindowView.model_validate(row.calling_window) if row.calling_window else None
        ),
        retry=RetryView(
            max_attempts=row.max_attempts,
            on=list(row.retry_on),
            backoff_seconds=row.backoff_seconds,
        ),
        machine_detection=row.machine_detection,
        voicemail_message=row.voicemail_message,
        ring_timeout_seconds=row.ring_timeout_seconds,
        ended_reason=row.ended_reason,
        metadata=dict(row.metadata_),
        attempts=[attempt_view(attempt) for attempt in attempts],
        created_at=row.created_at,
        ended_at=row.ended_at,
    )


def batch_view(row: BatchRow, counts: dict[TaskStatus, int]) -> BatchView:
    return BatchView(
        id=row.id,
        agent_id=row.agent_id,
        from_number=row.from_number,
        max_concurrency=row.max_concurrency,
        metadata=dict(row.metadata_),
        total=sum(counts.values()),
        counts=counts,
        created_at=row.created_at,
        canceled_at=row.canceled_at,
    )
