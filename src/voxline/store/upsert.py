"""INSERT ... ON CONFLICT DO UPDATE, written once for both SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from voxline.store.models import Base


async def upsert(
    session: AsyncSession, model: type[Base], values: dict[str, Any], keys: Sequence[str]
) -> None:
    """Insert `values`, or overwrite the non-key columns of the row with the same `keys`."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(model).values(values)
    updates = {name: statement.excluded[name] for name in values if name not in keys}
    await session.execute(statement.on_conflict_do_update(index_elements=keys, set_=updates))
