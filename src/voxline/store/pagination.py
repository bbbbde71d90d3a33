"""Cursor pagination over time-sortable IDs, newest first.

The cursor is the ID of the last item of the previous page: the next page is the items whose
ID sorts before it. IDs never change, so pages neither skip nor repeat items when rows are
inserted or deleted between requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

T = TypeVar("T")

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    has_more: bool
    next_cursor: str | None


async def paginate(
    db: AsyncSession,
    statement: Select[T],
    id_column: InstrumentedAttribute[Any],
    *,
    limit: int,
    after: str | None,
) -> Page[T]:
    """Run `statement` (one entity per row) a page at a time, newest first."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
    if after is not None:
        statement = statement.where(id_column < after)
    rows = list(await db.scalars(statement.order_by(id_column.desc()).limit(limit + 1)))
    has_more = len(rows) > limit
    items = rows[:limit]
    next_cursor: str | None = getattr(items[-1], id_column.key) if has_more else None
    return Page(items=items, has_more=has_more, next_cursor=next_cursor)
