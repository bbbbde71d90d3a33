"""/v1/sessions: calls (phone or web) with their status, timing, transcript, turn metrics and
post-call analysis."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import Field

from voxline.api.deps import (
    DatabaseDep,
    Limit,
    PrincipalDep,
    SessionCursor,
    check_cursor,
    get_state,
)
from voxline.api.errors import error_responses
from voxline.api.models import ApiModel, ListResponse
from voxline.store import sessions as repo
from voxline.store.analyses import AnalysisStatus, analysis_json, session_analysis
from voxline.store.models import SessionRow
from voxline.store.pagination import DEFAULT_PAGE_SIZE
from voxline.store.session_state import Channel, Direction, SessionStatus
from voxline.store.transcripts import transcript_items, turn_metrics

router = APIRouter(
    prefix="/v1/sessions",
    tags=["sessions"],
    responses=error_responses(400, 401, 404, 409, 422),
)


class TranscriptEntry(ApiModel):
    seq: int
    role: str = Field(description="caller, agent, tool_call, tool_result or dtmf")
    text: str
    at_ms: int = Field(description="Milliseconds since the call started.")
    interrupted: bool
    heard_text: str | None = Field(
        description="Agent items: what the caller actually heard (less than text if interrupted)."
    )
    data: dict[str, Any]


class TurnMetricsEntry(ApiModel):
    """One agent turn's latency accounting in milliseconds."""

    turn: int
    end_of_turn_wait_ms: float | None
    stt_ms: float | None
    llm_first_token_ms: float | None
    first_clause_ms: float | None
    tts_first_byte_ms: float | None
    turn_latency_ms: float | None = Field(
        description="End of caller speech to the first agent audio sent."
    )
    overhead_ms: float | None = Field(description="Turn latency not spent in providers.")
    interrupted: bool


class SessionSummary(ApiModel):
    id: str = Field(description="sess_...")
    workspace_id: str
    agent_id: str
    instance_id: str | None
    channel: str = Field(description="phone or web")
    direction: str = Field(description="inbound or outbound")
    status: SessionStatus
    from_number: str | None = Field(serialization_alias="from")
    to_number: str | None = Field(serialization_alias="to")
    call_sid: str | None
    end_reason: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    duration_ms: int | None
    first_response_ms: float | None = Field(
        description="First agent audio sent minus the start of the stream."
    )


class SessionAnalysis(ApiModel):
    """What was made of the call once it ended (the agent's `analysis` section)."""

    status: AnalysisStatus = Field(description="pending, running, done or failed")
    summary: str | None
    data: Any = Field(description="The fields extracted, valid against the agent's dataSchema.")
    success: bool | None = Field(description="Whether the call met the success criteria.")
    error: str | None = Field(description="Why the analysis failed (or last failed, if retried).")


class Session(SessionSummary):
    transcript: list[TranscriptEntry]
    metrics: list[TurnMetricsEntry]
    analysis: SessionAnalysis | None = Field(
        description="Null when the session's agent has no analysis section."
    )


class SessionList(ListResponse[SessionSummary]):
    pass


def _summary(row: SessionRow) -> dict[str, Any]:
    duration = None
    if row.started_at is not None and row.ended_at is not None:
        duration = int((row.ended_at - row.started_at).total_seconds() * 1000)
    return {
        "id": row.id,
        "workspace_id": row.workspace_id,
        "agent_id": row.agent_id,
        "instance_id": row.instance_id,
        "channel": row.channel,
        "direction": row.direction,
        "status": SessionStatus(row.status),
        "from_number": row.from_number,
        "to_number": row.to_number,
        "call_sid": row.call_sid,
        "end_reason": row.end_reason,
        "error": row.error,
        "created_at": row.created_at,
        "started_at": row.started_at,
        "ended_at": row.ended_at,
        "duration_ms": duration,
        "first_response_ms": row.first_response_ms,
    }


@router.get("", summary="List sessions, newest first")
async def list_sessions(
    principal: PrincipalDep,
    database: DatabaseDep,
    agent_id: Annotated[str | None, Query(alias="agentId")] = None,
    status: Annotated[SessionStatus | None, Query()] = None,
    direction: Annotated[Direction | None, Query()] = None,
    channel: Annotated[Channel | None, Query()] = None,
    created_after: Annotated[
        datetime | None,
        Query(alias="createdAfter", description="Sessions created at or after this time."),
    ] = None,
    created_before: Annotated[
        datetime | None,
        Query(alias="createdBefore", description="Sessions created before this time."),
    ] = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
    after: SessionCursor = None,
) -> SessionList:
    async with database.transaction() as db:
        page = await repo.list_sessions(
            db,
            principal.workspace_id,
            agent_id=agent_id,
            status=status,
            direction=direction,
            channel=channel,
            created_after=_aware(created_after),
            created_before=_aware(created_before),
            limit=limit,
            after=check_cursor(after, "sess"),
        )
    return SessionList(
        data=[SessionSummary.model_validate(_summary(row)) for row in page.items],
        has_more=page.has_more,
        next_cursor=page.next_cursor,
    )


@router.get("/{session_id}", summary="Get a session with its transcript, turn metrics and analysis")
async def get_session(principal: PrincipalDep, database: DatabaseDep, session_id: str) -> Session:
    async with database.transaction() as db:
        row = await repo.get_session(db, session_id, workspace_id=principal.workspace_id)
        items = await transcript_items(db, session_id)
        metrics = await turn_metrics(db, session_id)
        analysis = await session_analysis(db, session_id)
    return Session.model_validate(
        {
            **_summary(row),
            "transcript": [
                TranscriptEntry.model_validate(item, from_attributes=True) for item in items
            ],
            "metrics": [
                TurnMetricsEntry.model_validate(entry, from_attributes=True) for entry in metrics
            ],
            "analysis": None if analysis is None else analysis_json(analysis),
        }
    )


@router.delete(
    "/{session_id}",
    status_code=204,
    summary="Delete a finished session with its transcript, metrics and recording",
)
async def delete_session(
    request: Request, principal: PrincipalDep, database: DatabaseDep, session_id: str
) -> Response:
    async with database.transaction() as db:
        await repo.delete_session(db, principal.workspace_id, session_id)
    await get_state(request).engine.recordings.delete(principal.workspace_id, session_id)
    return Response(status_code=204)


def _aware(moment: datetime | None) -> datetime | None:
    """A time without a zone is taken as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
