"""INSERT ... ON CONFLICT DO UPDATE, written once for both SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from voxline.store.models import Base


async def upsert(
    db: AsyncSession,
    model: type[Base],
    values: dict[str, Any],
    keys: Sequence[str],
    *,
    update: Sequence[str] | None = None,
) -> None:
    """Insert `values`, or overwrite the columns `update` (default: all but `keys`) of the
    row with the same `keys`."""
    insert = postgresql.insert if db.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(model).values(values)
    columns = update if update is not None else [name for name in values if name not in keys]
    updates = {name: statement.excluded[name] for name in columns}
    await db.execute(statement.on_conflict_do_update(index_elements=keys, set_=updates))
