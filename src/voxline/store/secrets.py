"""Workspace secrets: named provider keys, stored sealed by a `SecretBox`, never listed by value.

Only `get_secret` and `voxline.calls.credentials` ever see a plaintext value; what lists and
writes return is a `SecretInfo` (name and timestamps).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from voxline.agent_spec import CREDENTIAL_NAME_PATTERN
from voxline.security.secret_box import SecretBox
from voxline.store.errors import NotFound
from voxline.store.models import WorkspaceSecret
from voxline.store.pagination import MAX_PAGE_SIZE, Page
from voxline.store.types import utcnow

MAX_SECRET_CHARS = 8192
_NAME = re.compile(CREDENTIAL_NAME_PATTERN)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """What may be shown of a secret: its name and when it was set, never its value."""

    name: str
    created_at: datetime
    updated_at: datetime


def check_secret_name(name: str) -> str:
    """`name` if it can name a secret (as an `apiKeyRef` can); ValueError otherwise."""
    if not _NAME.match(name):
        raise ValueError(
            "a secret name is 1 to 64 letters, digits, '_', '.' or '-', starting with a letter "
            "or digit"
        )
    return name


def check_secret_value(value: str) -> str:
    """`value` if it can be stored; ValueError (never quoting it) otherwise.

    Values are sent as HTTP headers, so control characters and surrounding whitespace (a
    pasted newline) are refused rather than failing later at the vendor."""
    if not value:
        raise ValueError("a secret value cannot be empty")
    if len(value) > MAX_SECRET_CHARS:
        raise ValueError(f"a secret value is at most {MAX_SECRET_CHARS} characters")
    if _CONTROL.search(value):
        raise ValueError("a secret value cannot contain control characters (newlines, tabs)")
    if value != value.strip():
        raise ValueError("a secret value cannot start or end with whitespace")
    return value


async def put_secret(
    db: AsyncSession, box: SecretBox, workspace_id: str, name: str, value: str
) -> tuple[SecretInfo, bool]:
    """Store `value` sealed under `name`, replacing any value of that name; the flag says
    whether it was created. ValueError for an invalid name or value."""
    check_secret_name(name)
    check_secret_value(value)
    now = utcnow()
    insert = postgresql.insert if db.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(WorkspaceSecret).values(
        workspace_id=workspace_id,
        name=name,
        ciphertext=box.seal(value, workspace_id=workspace_id, name=name),
        created_at=now,
        updated_at=now,
    )
    # One statement, so concurrent writers of one name cannot collide; a replace keeps
    # created_at, which is how the returned row tells a creation from a replacement.
    upsert = statement.on_conflict_do_update(
        index_elements=[WorkspaceSecret.workspace_id, WorkspaceSecret.name],
        set_={
            "ciphertext": statement.excluded.ciphertext,
            "updated_at": statement.excluded.updated_at,
        },
    ).returning(WorkspaceSecret.created_at, WorkspaceSecret.updated_at)
    created_at, updated_at = (await db.execute(upsert)).one()
    return SecretInfo(name, created_at, updated_at), created_at == updated_at


async def get_secret(db: AsyncSession, box: SecretBox, workspace_id: str, name: str) -> str:
    """The plaintext of the workspace's secret `name`: `NotFound` if there is none,
    `SecretBoxError` if it cannot be decrypted."""
    row = await db.get(WorkspaceSecret, (workspace_id, name))
    if row is None:
        raise NotFound("secret", name)
    return box.open(row.ciphertext, workspace_id=workspace_id, name=name)


async def sealed_secrets(
    db: AsyncSession, workspace_id: str, names: Iterable[str]
) -> dict[str, bytes]:
    """The workspace's secrets among `names`, still sealed, by name (absent ones left out)."""
    wanted = set(names)
    if not wanted:
        return {}
    rows = await db.execute(
        select(WorkspaceSecret.name, WorkspaceSecret.ciphertext).where(
            WorkspaceSecret.workspace_id == workspace_id, WorkspaceSecret.name.in_(wanted)
        )
    )
    return {name: ciphertext for name, ciphertext in rows}


async def list_secrets(
    db: AsyncSession, workspace_id: str, *, limit: int, after: str | None
) -> Page[SecretInfo]:
    """The workspace's secrets by name, A to Z, a page at a time (`after`: the last name seen)."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
    statement = select(
        WorkspaceSecret.name, WorkspaceSecret.created_at, WorkspaceSecret.updated_at
    ).where(WorkspaceSecret.workspace_id == workspace_id)
    if after is not None:
        statement = statement.where(WorkspaceSecret.name > after)
    rows = (await db.execute(statement.order_by(WorkspaceSecret.name).limit(limit + 1))).all()
    items = [SecretInfo(name, created_at, updated_at) for name, created_at, updated_at in rows]
    has_more = len(items) > limit
    items = items[:limit]
    return Page(items=items, has_more=has_more, next_cursor=items[-1].name if has_more else None)


async def delete_secret(db: AsyncSession, workspace_id: str, name: str) -> None:
    """Delete the workspace's secret `name`; `NotFound` if there is none."""
    row = await db.get(WorkspaceSecret, (workspace_id, name))
    if row is None:
        raise NotFound("secret", name)
    await db.delete(row)
    await db.flush()
