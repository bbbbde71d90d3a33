"""/v1/agents: create, read, update (partial, re-validated whole), delete and list agents.

An agent's body is `voxline.agent_spec.AgentSpec` itself (camelCase in JSON); responses add
its id, workspace and timestamps.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field, ValidationError, create_model

from voxline.agent_spec import AgentSpec
from voxline.api.deps import AgentCursor, DatabaseDep, Limit, PrincipalDep, StateDep, check_cursor
from voxline.api.errors import ApiError, error_responses, validation_error
from voxline.api.models import ListResponse
from voxline.security import egress
from voxline.store import agents as repo
from voxline.store.models import AgentRow
from voxline.store.pagination import DEFAULT_PAGE_SIZE

_HOST_IN_ERROR = 100

router = APIRouter(
    prefix="/v1/agents",
    tags=["agents"],
    responses=error_responses(400, 401, 404, 422),
)


class Agent(AgentSpec):
    """A stored agent: its spec plus identity."""

    id: str = Field(description="agent_...")
    workspace_id: str
    created_at: datetime
    updated_at: datetime


class AgentList(ListResponse[Agent]):
    pass


def _partial(model: type[BaseModel], name: str, doc: str) -> type[BaseModel]:
    """`model` with every field optional (None when absent), same aliases and constraints."""
    fields: dict[str, Any] = {}
    for field_name, info in model.model_fields.items():
        annotation: Any = info.annotation
        annotation = annotation | None
        if info.metadata:
            annotation = Annotated[(annotation, *info.metadata)]
        fields[field_name] = (
            annotation,
            Field(default=None, description=info.description, discriminator=info.discriminator),
        )
    return create_model(name, __config__=model.model_config, __doc__=doc, **fields)


# Derived from AgentSpec at import so the two can never drift; type checkers see a plain model.
if TYPE_CHECKING:
    AgentPatch = BaseModel
else:
    AgentPatch = _partial(
        AgentSpec,
        "AgentPatch",
        "Any of an agent's top-level fields. Each one given replaces the stored value whole "
        "(nested objects such as `llm` included); the resulting spec is validated again.",
    )


def _to_agent(row: AgentRow) -> Agent:
    return Agent.model_validate(
        {
            **row.spec,
            "id": row.id,
            "workspace_id": row.workspace_id,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
        }
    )


async def _check_egress(spec: AgentSpec) -> None:
    """A 422 naming the first URL field the egress policy refuses (see docs/operations.md)."""
    policy = egress.current()
    for param, url in spec.outbound_urls():
        refusal = await policy.url_refusal(url)
        if refusal is not None:
            raise ApiError(
                422,
                f"{param}: the server may not connect to {_host(url)!r}: {refusal}. An operator "
                "can allow it with VOXLINE_EGRESS_ALLOW.",
                param=param,
            )


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "")[:_HOST_IN_ERROR]
    except ValueError:
        return url[:_HOST_IN_ERROR]


@router.post("", status_code=201, summary="Create an agent")
async def create_agent(
    body: AgentSpec, principal: PrincipalDep, database: DatabaseDep, state: StateDep
) -> Agent:
    await _check_egress(body)
    async with database.transaction() as db:
        row = await repo.create_agent(db, principal.workspace_id, body)
    state.engine.prepare_agent(body)
    return _to_agent(row)


@router.get("", summary="List agents, newest first")
async def list_agents(
    principal: PrincipalDep,
    database: DatabaseDep,
    limit: Limit = DEFAULT_PAGE_SIZE,
    after: AgentCursor = None,
) -> AgentList:
    async with database.transaction() as db:
        page = await repo.list_agents(
            db, principal.workspace_id, limit=limit, after=check_cursor(after, "agent")
        )
    return AgentList(
        data=[_to_agent(row) for row in page.items],
        has_more=page.has_more,
        next_cursor=page.next_cursor,
    )


@router.get("/{agent_id}", summary="Get an agent")
async def get_agent(agent_id: str, principal: PrincipalDep, database: DatabaseDep) -> Agent:
    async with database.transaction() as db:
        row = await repo.get_agent(db, principal.workspace_id, agent_id)
    return _to_agent(row)


@router.patch("/{agent_id}", summary="Update some of an agent's fields")
async def update_agent(
    agent_id: str, body: AgentPatch, principal: PrincipalDep, database: DatabaseDep, state: StateDep
) -> Agent:
    changes = body.model_dump(mode="json", by_alias=True, exclude_unset=True)
    async with database.transaction() as db:
        row = await repo.get_agent(db, principal.workspace_id, agent_id, for_update=True)
        if changes:
            current = repo.agent_spec(row).model_dump(mode="json", by_alias=True)
            merged = {**current, **changes}
            try:
                spec = AgentSpec.model_validate(merged)
            except ValidationError as exc:
                raise validation_error(exc.errors(), merged) from exc
            await _check_egress(spec)
            row = await repo.replace_agent_spec(db, row, spec)
    if changes:
        state.engine.prepare_agent(repo.agent_spec(row))
    return _to_agent(row)


@router.delete(
    "/{agent_id}",
    status_code=204,
    summary="Delete an agent (409 while it has instances)",
    responses=error_responses(409),
)
async def delete_agent(agent_id: str, principal: PrincipalDep, database: DatabaseDep) -> Response:
    async with database.transaction() as db:
        await repo.delete_agent(db, principal.workspace_id, agent_id)
    return Response(status_code=204)
