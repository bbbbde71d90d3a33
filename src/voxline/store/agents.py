"""Agents: a workspace's stored `AgentSpec`s."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from voxline.agent_spec import AgentSpec
from voxline.ids import new_id
from voxline.store.errors import Conflict, NotFound
from voxline.store.models import AgentRow, InstanceRow
from voxline.store.pagination import Page, paginate
from voxline.store.types import utcnow


def agent_spec(row: AgentRow) -> AgentSpec:
    """The row's spec as the model the runtime runs."""
    return AgentSpec.model_validate(row.spec)


async def create_agent(db: AsyncSession, workspace_id: str, spec: AgentSpec) -> AgentRow:
    now = utcnow()
    row = AgentRow(
        id=new_id("agent"),
        workspace_id=workspace_id,
        name=spec.name,
        spec=spec.model_dump(mode="json"),
        created_at=now,
        updated_at=now,
    )
    db.add(row)
    await db.flush()
    return row


async def get_agent(
    db: AsyncSession,
    workspace_id: str,
    agent_id: str,
    *,
    for_update: bool = False,
    param: str | None = None,
) -> AgentRow:
    """The workspace's agent; `NotFound` (naming `param`) if it has none with that ID.

    `for_update` locks the row until the transaction ends (PostgreSQL), for read-modify-write.
    """
    statement = select(AgentRow).where(
        AgentRow.id == agent_id, AgentRow.workspace_id == workspace_id
    )
    if for_update:
        statement = statement.with_for_update()
    row = await db.scalar(statement)
    if row is None:
        raise NotFound("agent", agent_id, param=param)
    return row


async def list_agents(
    db: AsyncSession, workspace_id: str, *, limit: int, after: str | None
) -> Page[AgentRow]:
    statement = select(AgentRow).where(AgentRow.workspace_id == workspace_id)
    return await paginate(db, statement, AgentRow.id, limit=limit, after=after)


async def replace_agent_spec(db: AsyncSession, row: AgentRow, spec: AgentSpec) -> AgentRow:
    """Store `spec` as the agent's whole new spec."""
    row.spec = spec.model_dump(mode="json")
    row.name = spec.name
    row.updated_at = utcnow()
    await db.flush()
    return row


async def delete_agent(db: AsyncSession, workspace_id: str, agent_id: str) -> None:
    """Delete the agent; `Conflict` while it still has instances (they hold callers' memory)."""
    row = await get_agent(db, workspace_id, agent_id, for_update=True)
    instances = await db.scalar(
        select(func.count()).select_from(InstanceRow).where(InstanceRow.agent_id == agent_id)
    )
    if instances:
        raise _in_use(agent_id, instances)
    await db.delete(row)
    try:
        await db.flush()
    except IntegrityError as exc:
        # An instance was created between the count and the delete.
        raise _in_use(agent_id, None) from exc


def _in_use(agent_id: str, instances: int | None) -> Conflict:
    count = f"{instances} instance(s)" if instances else "instances"
    return Conflict(f"agent {agent_id!r} still has {count}: delete them first")


async def all_agent_specs(db: AsyncSession) -> list[AgentSpec]:
    """Every stored agent's spec, across workspaces (for preloading models at start-up)."""
    rows = (await db.scalars(select(AgentRow))).all()
    return [agent_spec(row) for row in rows]
