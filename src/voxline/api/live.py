"""Live calls: their events as Server-Sent Events, and hang-up, transfer and say, from any process.

`GET /v1/sessions/{id}/events` replays the session's recent events, then streams them as they
happen and ends after `session.ended`; a client reconnecting with `Last-Event-ID` misses
nothing still kept. `GET /v1/events` streams the workspace's session starts and ends.
Each SSE message is `id:` (the entry ID), `event:` (the event type) and `data:` (its JSON).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from fastapi.responses import StreamingResponse
from pydantic import Field

from voxline.api.deps import DatabaseDep, PrincipalDep, get_state
from voxline.api.errors import ApiError, error_responses
from voxline.api.models import ApiModel
from voxline.app_state import AppState
from voxline.live.control import Command, Outcome
from voxline.live.hub import (
    ENTRY_ID_PATTERN,
    EventLog,
    LiveEntry,
    session_key,
    workspace_key,
)
from voxline.runtime.events import SessionEnded
from voxline.store import sessions as repo
from voxline.store.database import Database
from voxline.store.models import SessionRow
from voxline.store.session_state import SessionStatus

router = APIRouter(tags=["live"], responses=error_responses(400, 401, 404, 422))

KEEP_ALIVE_S = 15.0
"""An idle stream sends a comment this often (and checks whether its session ended)."""

_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_LIVE = frozenset({SessionStatus.PENDING.value, SessionStatus.IN_PROGRESS.value})
_SSE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "A stream of Server-Sent Events."}
}

StateDep = Annotated[AppState, Depends(get_state)]
LastEventId = Annotated[
    str,
    Header(
        alias="Last-Event-ID",
        description="Resume after this event (the last `id:` seen).",
        pattern=ENTRY_ID_PATTERN,
    ),
]


def _frame(entry_id: str | None, kind: str, data: str) -> str:
    head = "" if entry_id is None else f"id: {entry_id}\n"
    return f"{head}event: {kind}\ndata: {data}\n\n"


def _kind(entry: LiveEntry) -> str:
    kind: str = json.loads(entry.data).get("type", "message")
    return kind


async def _stored_row(database: Database, session_id: str) -> SessionRow:
    async with database.transaction() as db:
        return await repo.get_session(db, session_id)


def _stored_end(row: SessionRow) -> str:
    event = SessionEnded(
        reason=row.end_reason or "error",
        first_response_ms=row.first_response_ms,
        error=row.error,
    )
    return event.model_dump_json(by_alias=True)


async def _session_stream(
    log: EventLog, database: Database, row: SessionRow, after: str | None
) -> AsyncIterator[str]:
    key = session_key(row.id)
    finished = row.status not in _LIVE
    while True:
        entries = await log.read(key, after, 0 if finished else KEEP_ALIVE_S)
        for entry in entries:
            kind = _kind(entry)
            yield _frame(entry.id, kind, entry.data)
            after = entry.id
            if kind == "session.ended":
                return
        if entries:
            continue
        if finished:
            # Its events are no longer kept (or it ran where none were published).
            yield _frame(None, "session.ended", _stored_end(row))
            return
        yield ": keep-alive\n\n"
        row = await _stored_row(database, row.id)
        finished = row.status not in _LIVE


async def _workspace_stream(
    log: EventLog, workspace_id: str, after: str | None
) -> AsyncIterator[str]:
    key = workspace_key(workspace_id)
    while True:
        entries = await log.read(key, after, KEEP_ALIVE_S)
        for entry in entries:
            yield _frame(entry.id, _kind(entry), entry.data)
            after = entry.id
        if not entries:
            yield ": keep-alive\n\n"


@router.get(
    "/v1/sessions/{session_id}/events",
    summary="Stream a session's events as they happen (Server-Sent Events)",
    response_class=StreamingResponse,
    responses=_SSE_RESPONSE,
)
async def session_events(
    principal: PrincipalDep,
    state: StateDep,
    database: DatabaseDep,
    session_id: str,
    last_event_id: LastEventId = "",
) -> StreamingResponse:
    after = last_event_id or None
    async with database.transaction() as db:
        row = await repo.get_session(db, session_id, workspace_id=principal.workspace_id)
    stream = _session_stream(state.engine.events.log, database, row, after)
    return StreamingResponse(stream, media_type="text/event-stream", headers=_SSE_HEADERS)


@router.get(
    "/v1/events",
    summary="Stream the workspace's session starts and ends (Server-Sent Events)",
    response_class=StreamingResponse,
    responses=_SSE_RESPONSE,
)
async def workspace_events(
    principal: PrincipalDep, state: StateDep, last_event_id: LastEventId = ""
) -> StreamingResponse:
    after = last_event_id or None
    stream = _workspace_stream(state.engine.events.log, principal.workspace_id, after)
    return StreamingResponse(stream, media_type="text/event-stream", headers=_SSE_HEADERS)


class TransferRequest(ApiModel):
    to: str = Field(pattern=r"^\+[1-9]\d{1,14}$", description="The E.164 number to hand over to.")


class SayRequest(ApiModel):
    text: str = Field(min_length=1, max_length=1000, description="What the agent says next.")


class ControlResponse(ApiModel):
    session_id: str
    command: Command
    status: str = Field(default="done", description="done: the live call acted on it.")


async def _control(
    state: AppState,
    database: Database,
    workspace_id: str,
    session_id: str,
    command: Command,
    argument: str = "",
) -> ControlResponse:
    async with database.transaction() as db:
        row = await repo.get_session(db, session_id, workspace_id=workspace_id)
    if row.status not in _LIVE:
        raise ApiError(409, f"Session {session_id} is over ({row.status}): it cannot be changed.")
    result = await state.engine.control.act(session_id, command, argument)
    if result.outcome is Outcome.UNAVAILABLE:
        raise ApiError(503, f"Live call control is unavailable: {result.message}.")
    if result.outcome is not Outcome.DONE:
        raise ApiError(409, f"Session {session_id}: {result.message}.")
    return ControlResponse(session_id=session_id, command=command)


_CONTROL_ERRORS = error_responses(409, 503)


@router.post(
    "/v1/sessions/{session_id}/hangup",
    summary="Hang up a live call (ends as operator_hangup)",
    responses=_CONTROL_ERRORS,
)
async def hang_up(
    principal: PrincipalDep, state: StateDep, database: DatabaseDep, session_id: str
) -> ControlResponse:
    return await _control(state, database, principal.workspace_id, session_id, "hangup")


@router.post(
    "/v1/sessions/{session_id}/transfer",
    summary="Hand a live phone call over to another number",
    responses=_CONTROL_ERRORS,
)
async def transfer(
    principal: PrincipalDep,
    state: StateDep,
    database: DatabaseDep,
    session_id: str,
    body: TransferRequest,
) -> ControlResponse:
    return await _control(state, database, principal.workspace_id, session_id, "transfer", body.to)


@router.post(
    "/v1/sessions/{session_id}/say",
    summary="Have the agent of a live call say a line now (cutting short what it says)",
    responses=_CONTROL_ERRORS,
)
async def say(
    principal: PrincipalDep,
    state: StateDep,
    database: DatabaseDep,
    session_id: str,
    body: SayRequest,
) -> ControlResponse:
    return await _control(state, database, principal.workspace_id, session_id, "say", body.text)
