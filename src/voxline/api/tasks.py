"""/v1/tasks and /v1/batches: outbound calls to place, one at a time or by the thousand.

A task is dialed by the dispatcher (`voxline.dispatch`) when due, inside its calling window,
within the workspace's and the batch's concurrency caps; each call is an attempt, and the
retry policy decides whether a busy, unanswered, failed or voicemail call is tried again.
POSTs take an `Idempotency-Key`: a retried request gets the first answer, never a second call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, Field, StringConstraints, model_validator

from voxline.api.deps import DatabaseDep, Limit, PrincipalDep, TaskCursor, check_cursor, get_state
from voxline.api.errors import ApiError, error_responses
from voxline.api.instances import Variables
from voxline.api.models import ApiModel, ListResponse
from voxline.dispatch.cancel import cancel_batch, cancel_task
from voxline.dispatch.retry import RETRYABLE
from voxline.dispatch.views import BatchView, Task, batch_view, task_view
from voxline.dispatch.windows import DAYS, CallingWindow, Day
from voxline.store import tasks as repo
from voxline.store.database import Database
from voxline.store.errors import NotFound
from voxline.store.idempotency import (
    begin_idempotent,
    complete_idempotent,
    release_idempotent,
    request_fingerprint,
)
from voxline.store.models import AgentRow, InstanceRow
from voxline.store.pagination import DEFAULT_PAGE_SIZE
from voxline.store.task_state import AttemptStatus, TaskStatus

tasks_router = APIRouter(
    prefix="/v1/tasks", tags=["tasks"], responses=error_responses(400, 401, 404, 409, 422)
)
batches_router = APIRouter(
    prefix="/v1/batches", tags=["batches"], responses=error_responses(400, 401, 404, 409, 422)
)

MAX_BATCH_TASKS = 10_000
PhoneNumber = Annotated[
    str,
    StringConstraints(pattern=r"^\+[1-9][0-9]{1,14}$"),
    Field(description="E.164, e.g. +14155550123."),
]
Metadata = Annotated[
    dict[str, Any], Field(max_length=50, description="Echoed in the task and its webhooks.")
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="A retried POST with the same key gets the first answer, not a new call.",
    ),
]


class CallingWindowIn(ApiModel):
    timezone: str = Field(description="The callee's IANA time zone, e.g. America/New_York.")
    days: list[Day] = Field(default_factory=lambda: list(DAYS), min_length=1)
    start: str = Field(pattern=r"^\d\d:\d\d$", description="HH:MM local time the window opens.")
    end: str = Field(
        pattern=r"^\d\d:\d\d$",
        description="HH:MM local time it closes; not after start: the next day.",
    )

    def parse(self) -> CallingWindow:
        return CallingWindow.parse(self.timezone, self.days, self.start, self.end)

    @model_validator(mode="after")
    def _valid(self) -> CallingWindowIn:
        self.parse()
        return self


class RetryIn(ApiModel):
    max_attempts: int = Field(default=1, ge=1, le=10, description="Calls at most, first included.")
    on: list[Literal["busy", "no_answer", "failed", "voicemail"]] = Field(
        default_factory=list, description="The outcomes that call again."
    )
    backoff_seconds: int = Field(
        default=600, ge=0, le=7 * 86_400, description="Wait after an attempt before the next."
    )


class TaskOptionsIn(ApiModel):
    """How the call is placed: shared by a task and every task of a batch."""

    scheduled_at: AwareDatetime | None = Field(default=None, description="Default: now.")
    calling_window: CallingWindowIn | None = None
    retry: RetryIn = Field(default_factory=RetryIn)
    machine_detection: Literal["off", "hang_up", "leave_message"] = Field(
        default="off",
        description="hang_up: end the call on an answering machine; leave_message: wait for "
        "the beep, speak voicemailMessage, hang up.",
    )
    voicemail_message: str | None = Field(default=None, min_length=1, max_length=2000)
    ring_timeout_seconds: int = Field(default=30, ge=5, le=600)

    @model_validator(mode="after")
    def _voicemail(self) -> TaskOptionsIn:
        if self.machine_detection == "leave_message" and not self.voicemail_message:
            raise ValueError("machineDetection leave_message needs a voicemailMessage")
        return self

    def options(self) -> repo.TaskOptions:
        return repo.TaskOptions(
            calling_window=self.calling_window.parse() if self.calling_window else None,
            max_attempts=self.retry.max_attempts,
            retry_on=frozenset(AttemptStatus(value) for value in self.retry.on) & RETRYABLE,
            backoff_seconds=self.retry.backoff_seconds,
            machine_detection=self.machine_detection,
            voicemail_message=self.voicemail_message,
            ring_timeout_seconds=self.ring_timeout_seconds,
        )


class TaskCreate(TaskOptionsIn):
    agent_id: str = Field(description="agent_...")
    to_number: PhoneNumber = Field(alias="to")
    from_number: PhoneNumber = Field(alias="from", description="A number of your Twilio account.")
    instance_id: str | None = Field(default=None, description="inst_...: the person's context.")
    variables: Variables = Field(default_factory=dict)
    metadata: Metadata = Field(default_factory=dict)


class BatchTaskIn(ApiModel):
    to_number: PhoneNumber = Field(alias="to")
    instance_id: str | None = None
    variables: Variables = Field(default_factory=dict)
    metadata: Metadata = Field(default_factory=dict)


class BatchCreate(TaskOptionsIn):
    agent_id: str
    from_number: PhoneNumber = Field(alias="from")
    tasks: list[BatchTaskIn] = Field(min_length=1, max_length=MAX_BATCH_TASKS)
    max_concurrency: int | None = Field(
        default=None, ge=1, le=10_000, description="Live calls of this batch at most."
    )
    metadata: Metadata = Field(default_factory=dict)


class TaskList(ListResponse[Task]):
    pass


# --- tasks ------------------------------------------------------------------------------------


@tasks_router.post("", summary="Place an outbound call", status_code=201, response_model=Task)
async def create_task(
    request: Request,
    principal: PrincipalDep,
    database: DatabaseDep,
    body: TaskCreate,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    async def work() -> dict[str, Any]:
        async with database.transaction() as db:
            await _check_refs(db, principal.workspace_id, body.agent_id, [body.instance_id])
            (row,) = await repo.create_tasks(
                db,
                workspace_id=principal.workspace_id,
                agent_id=body.agent_id,
                from_number=body.from_number,
                tasks=[
                    repo.NewTask(body.to_number, body.instance_id, body.variables, body.metadata)
                ],
                options=body.options(),
                scheduled_at=body.scheduled_at,
            )
            return _dump(task_view(row, []))

    return await _idempotent(request, database, principal.workspace_id, idempotency_key, work)


@tasks_router.get("", summary="List tasks, newest first")
async def list_tasks(
    principal: PrincipalDep,
    database: DatabaseDep,
    status: Annotated[TaskStatus | None, Query()] = None,
    agent_id: Annotated[str | None, Query(alias="agentId")] = None,
    batch_id: Annotated[str | None, Query(alias="batchId")] = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
    after: TaskCursor = None,
) -> TaskList:
    async with database.transaction() as db:
        page = await repo.list_tasks(
            db,
            principal.workspace_id,
            status=status,
            agent_id=agent_id,
            batch_id=batch_id,
            limit=limit,
            after=check_cursor(after, "task"),
        )
        attempts = await repo.attempts_of(db, [row.id for row in page.items])
    return TaskList(
        data=[task_view(row, attempts[row.id]) for row in page.items],
        has_more=page.has_more,
        next_cursor=page.next_cursor,
    )


@tasks_router.get("/{task_id}", summary="Get a task with its attempts")
async def get_task(principal: PrincipalDep, database: DatabaseDep, task_id: str) -> Task:
    async with database.transaction() as db:
        row = await repo.get_task(db, task_id, workspace_id=principal.workspace_id)
        attempts = await repo.attempts_of(db, [row.id])
    return task_view(row, attempts[row.id])


@tasks_router.post(
    "/{task_id}/cancel",
    summary="Cancel a task: a waiting one never dials, a live call is hung up",
)
async def cancel(request: Request, principal: PrincipalDep, task_id: str) -> Task:
    state = get_state(request)
    await cancel_task(state.database, state.engine.twilio, principal.workspace_id, task_id)
    async with state.database.transaction() as db:
        row = await repo.get_task(db, task_id, workspace_id=principal.workspace_id)
        attempts = await repo.attempts_of(db, [row.id])
    return task_view(row, attempts[row.id])


# --- batches ----------------------------------------------------------------------------------


@batches_router.post(
    "", summary="Create up to 10,000 tasks at once", status_code=201, response_model=BatchView
)
async def create_batch(
    request: Request,
    principal: PrincipalDep,
    database: DatabaseDep,
    body: BatchCreate,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    async def work() -> dict[str, Any]:
        async with database.transaction() as db:
            instances = {task.instance_id for task in body.tasks}
            await _check_refs(db, principal.workspace_id, body.agent_id, list(instances))
            batch = await repo.create_batch(
                db,
                workspace_id=principal.workspace_id,
                agent_id=body.agent_id,
                from_number=body.from_number,
                max_concurrency=body.max_concurrency,
                metadata=body.metadata,
            )
            await repo.create_tasks(
                db,
                workspace_id=principal.workspace_id,
                agent_id=body.agent_id,
                from_number=body.from_number,
                tasks=[
                    repo.NewTask(task.to_number, task.instance_id, task.variables, task.metadata)
                    for task in body.tasks
                ],
                options=body.options(),
                scheduled_at=body.scheduled_at,
                batch_id=batch.id,
            )
            counts = await repo.batch_counts(db, batch.id)
            return _dump(batch_view(batch, counts))

    return await _idempotent(request, database, principal.workspace_id, idempotency_key, work)


@batches_router.get("/{batch_id}", summary="Get a batch with its task counts per status")
async def get_batch(principal: PrincipalDep, database: DatabaseDep, batch_id: str) -> BatchView:
    async with database.transaction() as db:
        batch = await repo.get_batch(db, batch_id, workspace_id=principal.workspace_id)
        counts = await repo.batch_counts(db, batch.id)
    return batch_view(batch, counts)


@batches_router.post("/{batch_id}/cancel", summary="Cancel every task of a batch not yet ended")
async def cancel_whole_batch(request: Request, principal: PrincipalDep, batch_id: str) -> BatchView:
    state = get_state(request)
    await cancel_batch(state.database, state.engine.twilio, principal.workspace_id, batch_id)
    async with state.database.transaction() as db:
        batch = await repo.get_batch(db, batch_id, workspace_id=principal.workspace_id)
        counts = await repo.batch_counts(db, batch.id)
    return batch_view(batch, counts)


# --- helpers ----------------------------------------------------------------------------------


async def _check_refs(
    db: Any, workspace_id: str, agent_id: str, instance_ids: list[str | None]
) -> None:
    agent = await db.get(AgentRow, agent_id)
    if agent is None or agent.workspace_id != workspace_id:
        raise NotFound("agent", agent_id, param="agentId")
    for instance_id in instance_ids:
        if instance_id is None:
            continue
        instance = await db.get(InstanceRow, instance_id)
        if instance is None or instance.agent_id != agent_id:
            raise NotFound("instance", instance_id, param="instanceId")


def _dump(model: Task | BatchView) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True)


async def _idempotent(
    request: Request,
    database: Database,
    workspace_id: str,
    key: str | None,
    work: Callable[[], Awaitable[dict[str, Any]]],
) -> JSONResponse:
    """Run `work` once per `Idempotency-Key` and answer 201 with its result (replayed)."""
    if key is None:
        return JSONResponse(await work(), status_code=201)
    fingerprint = request_fingerprint(request.method, request.url.path, await request.body())
    try:
        stored = await begin_idempotent(database, workspace_id, key, fingerprint)
    except ValueError as exc:
        raise ApiError(400, str(exc), param="Idempotency-Key") from exc
    if stored is not None:
        return JSONResponse(stored.body, status_code=stored.status_code)
    try:
        body = await work()
    except BaseException:
        await release_idempotent(database, workspace_id, key)
        raise
    await complete_idempotent(database, workspace_id, key, 201, body)
    return JSONResponse(body, status_code=201)
