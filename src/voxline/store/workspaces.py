"""Workspaces: the tenant every resource belongs to."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from voxline.ids import new_id
from voxline.store.errors import Conflict
from voxline.store.models import Workspace


async def get_workspace_by_name(db: AsyncSession, name: str) -> Workspace | None:
    return await db.scalar(select(Workspace).where(Workspace.name == name))


async def create_workspace(db: AsyncSession, name: str) -> Workspace:
    """A new workspace with a fresh webhook signing secret; `Conflict` if the name is taken."""
    if not name.strip() or len(name) > 100:
        raise ValueError("a workspace name is 1 to 100 characters, not blank")
    if await get_workspace_by_name(db, name) is not None:
        raise Conflict(f"a workspace named {name!r} already exists", param="name")
    workspace = Workspace(id=new_id("ws"), name=name, webhook_secret=secrets.token_urlsafe(32))
    db.add(workspace)
    await db.flush()
    return workspace


async def get_or_create_workspace(db: AsyncSession, name: str) -> tuple[Workspace, bool]:
    """The workspace named `name`, created if missing; the flag says whether it was created."""
    existing = await get_workspace_by_name(db, name)
    if existing is not None:
        return existing, False
    return await create_workspace(db, name), True
