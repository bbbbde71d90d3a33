"""/v1/instances: one person's context for an agent.

`variables` fill the agent's `{{placeholders}}`; `externalRef` is the caller's own reference
(unique per agent); `memory` is a list of notes carried from earlier calls, oldest first, each
with a stable `id` (`DELETE /v1/instances/{id}/memory/{noteId}` removes one); with
`memoryEnabled: false` calls neither read nor add notes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime, Field, StringConstraints, field_validator

from voxline.api.deps import DatabaseDep, InstanceCursor, Limit, PrincipalDep, check_cursor
from voxline.api.errors import error_responses
from voxline.api.models import ApiModel, ListResponse
from voxline.store import instances as repo
from voxline.store.instances import MemoryNote as StoredNote
from voxline.store.models import InstanceRow
from voxline.store.pagination import DEFAULT_PAGE_SIZE
from voxline.store.types import utcnow

router = APIRouter(
    prefix="/v1/instances",
    tags=["instances"],
    responses=error_responses(400, 401, 404, 409, 422),
)

VariableName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
VariableValue = Annotated[str, StringConstraints(max_length=10_000)]
Variables = Annotated[
    dict[VariableName, VariableValue],
    Field(max_length=100, description="Values for the agent's {{placeholders}}."),
]
ExternalRef = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200),
    Field(description="Your own reference for this person (unique per agent)."),
]


class MemoryNoteIn(ApiModel):
    text: str = Field(min_length=1, max_length=4000)
    created_at: AwareDatetime | None = Field(default=None, description="Defaults to now.")

    @field_validator("created_at", mode="before")
    @classmethod
    def _date_time_text(cls, value: object) -> object:
        # The schema says an ISO 8601 string; pydantic alone would take a number as Unix time.
        if isinstance(value, int | float):
            raise ValueError("must be an ISO 8601 date-time string with a time zone")
        return value


class MemoryNote(ApiModel):
    id: str = Field(description="note_...")
    text: str
    created_at: datetime


Memory = Annotated[list[MemoryNoteIn], Field(max_length=200)]


class InstanceCreate(ApiModel):
    agent_id: str = Field(description="The agent this instance is for (agent_...).")
    external_ref: ExternalRef | None = None
    variables: Variables = Field(default_factory=dict)
    memory: Memory = Field(default_factory=list)
    memory_enabled: bool = Field(
        default=True, description="Calls read these notes, and their analyses add to them."
    )


class InstancePatch(ApiModel):
    """Any of these fields; each one given replaces the stored value, an absent one is left
    as it is. `externalRef: null` removes the reference. The agent cannot change."""

    external_ref: ExternalRef | None = None
    variables: Variables = Field(default_factory=dict)
    memory: Memory = Field(default_factory=list)
    memory_enabled: bool = True


class Instance(ApiModel):
    id: str = Field(description="inst_...")
    workspace_id: str
    agent_id: str
    external_ref: str | None
    variables: dict[str, str]
    memory: list[MemoryNote]
    memory_enabled: bool
    created_at: datetime
    updated_at: datetime


class InstanceList(ListResponse[Instance]):
    pass


def _to_instance(row: InstanceRow) -> Instance:
    return Instance(
        id=row.id,
        workspace_id=row.workspace_id,
        agent_id=row.agent_id,
        external_ref=row.external_ref,
        variables=row.variables,
        memory=[
            MemoryNote(id=note.id, text=note.text, created_at=note.created_at)
            for note in repo.memory_notes(row)
        ],
        memory_enabled=row.memory_enabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _stored_notes(notes: list[MemoryNoteIn]) -> list[StoredNote]:
    now = utcnow()
    return [
        StoredNote(
            text=note.text,
            created_at=note.created_at.astimezone(UTC) if note.created_at else now,
        )
        for note in notes
    ]


@router.post("", status_code=201, summary="Create an instance of an agent")
async def create_instance(
    body: InstanceCreate, principal: PrincipalDep, database: DatabaseDep
) -> Instance:
    async with database.transaction() as db:
        row = await repo.create_instance(
            db,
            principal.workspace_id,
            agent_id=body.agent_id,
            external_ref=body.external_ref,
            variables=body.variables,
            memory=_stored_notes(body.memory),
            memory_enabled=body.memory_enabled,
        )
    return _to_instance(row)


@router.get("", summary="List instances, newest first")
async def list_instances(
    principal: PrincipalDep,
    database: DatabaseDep,
    agent_id: Annotated[
        str | None, Query(alias="agentId", description="Only this agent's instances.")
    ] = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
    after: InstanceCursor = None,
) -> InstanceList:
    async with database.transaction() as db:
        page = await repo.list_instances(
            db,
            principal.workspace_id,
            agent_id=agent_id,
            limit=limit,
            after=check_cursor(after, "inst"),
        )
    return InstanceList(
        data=[_to_instance(row) for row in page.items],
        has_more=page.has_more,
        next_cursor=page.next_cursor,
    )


@router.get("/{instance_id}", summary="Get an instance")
async def get_instance(
    instance_id: str, principal: PrincipalDep, database: DatabaseDep
) -> Instance:
    async with database.transaction() as db:
        row = await repo.get_instance(db, principal.workspace_id, instance_id)
    return _to_instance(row)


@router.patch("/{instance_id}", summary="Update some of an instance's fields")
async def update_instance(
    instance_id: str, body: InstancePatch, principal: PrincipalDep, database: DatabaseDep
) -> Instance:
    given = body.model_fields_set
    async with database.transaction() as db:
        row = await repo.get_instance(db, principal.workspace_id, instance_id, for_update=True)
        if given:
            row = await repo.update_instance(
                db,
                row,
                external_ref=body.external_ref if "external_ref" in given else row.external_ref,
                variables=body.variables if "variables" in given else row.variables,
                memory=_stored_notes(body.memory) if "memory" in given else repo.memory_notes(row),
                memory_enabled=(
                    body.memory_enabled if "memory_enabled" in given else row.memory_enabled
                ),
            )
    return _to_instance(row)


@router.delete("/{instance_id}", status_code=204, summary="Delete an instance")
async def delete_instance(
    instance_id: str, principal: PrincipalDep, database: DatabaseDep
) -> Response:
    async with database.transaction() as db:
        await repo.delete_instance(db, principal.workspace_id, instance_id)
    return Response(status_code=204)


@router.delete("/{instance_id}/memory/{note_id}", status_code=204, summary="Remove one memory note")
async def delete_memory_note(
    instance_id: str, note_id: str, principal: PrincipalDep, database: DatabaseDep
) -> Response:
    async with database.transaction() as db:
        row = await repo.get_instance(db, principal.workspace_id, instance_id, for_update=True)
        await repo.delete_memory_note(db, row, note_id)
    return Response(status_code=204)
