"""Instances: one person's context for an agent (prompt variables, external reference, memory).

Memory is a list of notes carried from earlier calls, each `{"id", "text", "created_at"}` in
the row, oldest first. A note's ID stays the same for its life, so one can be removed or folded
into a summary without touching notes written meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from voxline.ids import new_id
from voxline.store.agents import get_agent
from voxline.store.errors import Conflict, NotFound
from voxline.store.models import AgentRow, InstanceRow
from voxline.store.pagination import Page, paginate
from voxline.store.types import utcnow


@dataclass(frozen=True, slots=True)
class MemoryNote:
    text: str
    created_at: datetime
    id: str = field(default_factory=lambda: new_id("note"))


def memory_notes(row: InstanceRow) -> list[MemoryNote]:
    """The instance's memory, oldest note first."""
    return [
        MemoryNote(
            id=note["id"], text=note["text"], created_at=datetime.fromisoformat(note["created_at"])
        )
        for note in row.memory
    ]


def _dump_memory(notes: list[MemoryNote]) -> list[dict[str, str]]:
    return [
        {"id": note.id, "text": note.text, "created_at": note.created_at.isoformat()}
        for note in notes
    ]


async def create_instance(
    db: AsyncSession,
    workspace_id: str,
    *,
    agent_id: str,
    external_ref: str | None,
    variables: dict[str, str],
    memory: list[MemoryNote],
    memory_enabled: bool = True,
) -> InstanceRow:
    """A new instance of the workspace's agent; `NotFound` (param agentId) if there is none."""
    await get_agent(db, workspace_id, agent_id, param="agentId")
    now = utcnow()
    row = InstanceRow(
        id=new_id("inst"),
        workspace_id=workspace_id,
        agent_id=agent_id,
        external_ref=external_ref,
        variables=dict(variables),
        memory=_dump_memory(memory),
        memory_enabled=memory_enabled,
        created_at=now,
        updated_at=now,
    )
    await _check_external_ref_free(db, row)
    db.add(row)
    await _flush_unique(db, row)
    return row


async def get_instance(
    db: AsyncSession, workspace_id: str, instance_id: str, *, for_update: bool = False
) -> InstanceRow:
    """The workspace's instance; `NotFound` if it has none with that ID."""
    statement = select(InstanceRow).where(
        InstanceRow.id == instance_id, InstanceRow.workspace_id == workspace_id
    )
    if for_update:
        statement = statement.with_for_update()
    row = await db.scalar(statement)
    if row is None:
        raise NotFound("instance", instance_id)
    return row


async def agent_instance(db: AsyncSession, agent: AgentRow, instance_id: str) -> InstanceRow:
    """The instance `instance_id` of `agent` (in the agent's workspace); `NotFound` naming
    `instanceId` otherwise."""
    row = await db.scalar(
        select(InstanceRow).where(
            InstanceRow.id == instance_id,
            InstanceRow.workspace_id == agent.workspace_id,
            InstanceRow.agent_id == agent.id,
        )
    )
    if row is None:
        raise NotFound("instance", instance_id, param="instanceId")
    return row


async def list_instances(
    db: AsyncSession,
    workspace_id: str,
    *,
    agent_id: str | None = None,
    limit: int,
    after: str | None,
) -> Page[InstanceRow]:
    """The workspace's instances, newest first, optionally only those of one agent."""
    statement = select(InstanceRow).where(InstanceRow.workspace_id == workspace_id)
    if agent_id is not None:
        statement = statement.where(InstanceRow.agent_id == agent_id)
    return await paginate(db, statement, InstanceRow.id, limit=limit, after=after)


async def update_instance(
    db: AsyncSession,
    row: InstanceRow,
    *,
    external_ref: str | None,
    variables: dict[str, str],
    memory: list[MemoryNote],
    memory_enabled: bool,
) -> InstanceRow:
    """Give the instance these values (all of them: the caller merges partial updates)."""
    row.external_ref = external_ref
    row.variables = dict(variables)
    row.memory = _dump_memory(memory)
    row.memory_enabled = memory_enabled
    row.updated_at = utcnow()
    await _check_external_ref_free(db, row)
    await _flush_unique(db, row)
    return row


async def add_memory_note(db: AsyncSession, row: InstanceRow, text: str) -> MemoryNote:
    """Append a note, dated now, to the instance's memory (get `row` with `for_update=True`)."""
    note = MemoryNote(text=text, created_at=utcnow())
    row.memory = [*row.memory, *_dump_memory([note])]
    row.updated_at = utcnow()
    await db.flush()
    return note


async def delete_memory_note(db: AsyncSession, row: InstanceRow, note_id: str) -> None:
    """Remove one note (get `row` with `for_update=True`); `NotFound` if it has none so named."""
    kept = [note for note in row.memory if note["id"] != note_id]
    if len(kept) == len(row.memory):
        raise NotFound("memory note", note_id)
    row.memory = kept
    row.updated_at = utcnow()
    await db.flush()


async def fold_memory_notes(
    db: AsyncSession, row: InstanceRow, note_ids: list[str], text: str
) -> MemoryNote | None:
    """Replace the notes `note_ids` by one note saying `text`, in the place of the oldest,
    dated as the newest of them. Does nothing (None) unless every one of them is still there:
    the memory changed since they were read (get `row` with `for_update=True`)."""
    notes = memory_notes(row)
    folded = [note for note in notes if note.id in set(note_ids)]
    if not folded or len(folded) != len(set(note_ids)):
        return None
    summary = MemoryNote(text=text, created_at=max(note.created_at for note in folded))
    first = notes.index(folded[0])
    kept = [note for note in notes if note.id not in set(note_ids)]
    kept.insert(first, summary)
    row.memory = _dump_memory(kept)
    row.updated_at = utcnow()
    await db.flush()
    return summary


async def delete_instance(db: AsyncSession, workspace_id: str, instance_id: str) -> None:
    row = await get_instance(db, workspace_id, instance_id)
    await db.delete(row)
    await db.flush()


async def _check_external_ref_free(db: AsyncSession, row: InstanceRow) -> None:
    if row.external_ref is None:
        return
    with db.no_autoflush:  # the row's own pending change would hit the constraint first
        clash = await db.scalar(
            select(InstanceRow.id).where(
                InstanceRow.agent_id == row.agent_id,
                InstanceRow.external_ref == row.external_ref,
                InstanceRow.id != row.id,
            )
        )
    if clash is not None:
        raise _duplicate_ref(row)


async def _flush_unique(db: AsyncSession, row: InstanceRow) -> None:
    try:
        await db.flush()
    except IntegrityError as exc:
        # Another transaction took the same external reference after our check.
        raise _duplicate_ref(row) from exc


def _duplicate_ref(row: InstanceRow) -> Conflict:
    return Conflict(
        f"agent {row.agent_id!r} already has an instance with externalRef {row.external_ref!r}",
        param="externalRef",
    )
