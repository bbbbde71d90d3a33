"""Reading a session's transcript items and per-turn metrics back, in order."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from voxline.store.models import TranscriptItemRow, TurnMetricsRow


async def transcript_items(db: AsyncSession, session_id: str) -> Sequence[TranscriptItemRow]:
    statement = (
        select(TranscriptItemRow)
        .where(TranscriptItemRow.session_id == session_id)
        .order_by(TranscriptItemRow.seq)
    )
    return (await db.scalars(statement)).all()


async def turn_metrics(db: AsyncSession, session_id: str) -> Sequence[TurnMetricsRow]:
    statement = (
        select(TurnMetricsRow)
        .where(TurnMetricsRow.session_id == session_id)
        .order_by(TurnMetricsRow.turn)
    )
    return (await db.scalars(statement)).all()
