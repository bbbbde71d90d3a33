"""`StoreRecorder`: the runtime's `CallRecorder`, writing each item and metric as it happens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from voxline.runtime.recording import TranscriptItem, TurnMetrics
from voxline.store.database import Database
from voxline.store.models import TranscriptItemRow, TurnMetricsRow
from voxline.store.upsert import upsert


class StoreRecorder:
    """Records one session's transcript and metrics; each call is its own short transaction
    (`record_batch` writes several in one), so whatever was said survives a crash. Items and
    metrics are upserted by `seq` / `turn`."""

    def __init__(self, database: Database, session_id: str) -> None:
        self._database = database
        self.session_id = session_id

    async def record_item(self, item: TranscriptItem) -> None:
        await self.record_batch([item], [])

    async def record_metrics(self, metrics: TurnMetrics) -> None:
        await self.record_batch([], [metrics])

    async def record_batch(
        self, items: Sequence[TranscriptItem], metrics: Sequence[TurnMetrics]
    ) -> None:
        """Several items and metrics in one transaction."""
        async with self._database.transaction() as session:
            for item in items:
                values = {"session_id": self.session_id, **asdict(item)}
                await upsert(session, TranscriptItemRow, values, ("session_id", "seq"))
            for entry in metrics:
                values = {"session_id": self.session_id, **asdict(entry)}
                await upsert(session, TurnMetricsRow, values, ("session_id", "turn"))
