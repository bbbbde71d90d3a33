"""What a call leaves behind: transcript items and per-turn metrics, recorded as they happen.

The runtime writes through `CallRecorder`; the store implements it. Items carry a sequence
number so that an agent item can be recorded when it starts and updated when it ends (finished
or interrupted, with the text the caller actually heard): a crash loses nothing already said.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

logger = logging.getLogger(__name__)

ItemRole = Literal["caller", "agent", "tool_call", "tool_result", "dtmf"]


@dataclass(slots=True)
class TranscriptItem:
    seq: int
    role: ItemRole
    text: str
    at_ms: int
    """Milliseconds since the call started."""
    interrupted: bool = False
    heard_text: str | None = None
    """For agent items: what the caller heard (all of `text` unless interrupted)."""
    data: dict[str, Any] = field(default_factory=dict)
    """Tool name, arguments, result or error."""


@dataclass(slots=True)
class TurnMetrics:
    """One agent turn's latency accounting, all in milliseconds (None when not applicable)."""

    turn: int
    end_of_turn_wait_ms: float | None = None
    stt_ms: float | None = None
    llm_first_token_ms: float | None = None
    first_clause_ms: float | None = None
    tts_first_byte_ms: float | None = None
    turn_latency_ms: float | None = None
    """First agent audio sent minus end of caller speech (last voiced frame received)."""
    overhead_ms: float | None = None
    """turn_latency minus the provider parts above: voxline's own cost."""
    interrupted: bool = False


class CallRecorder(Protocol):
    async def record_item(self, item: TranscriptItem) -> None:
        """Insert the item, or replace the one with the same `seq`."""
        ...

    async def record_metrics(self, metrics: TurnMetrics) -> None: ...


class MemoryRecorder:
    """Keeps everything in lists; for tests and the simulator."""

    def __init__(self) -> None:
        self.items: dict[int, TranscriptItem] = {}
        self.metrics: list[TurnMetrics] = []

    async def record_item(self, item: TranscriptItem) -> None:
        self.items[item.seq] = item

    async def record_metrics(self, metrics: TurnMetrics) -> None:
        self.metrics.append(metrics)

    def transcript(self) -> list[TranscriptItem]:
        return [self.items[seq] for seq in sorted(self.items)]


@runtime_checkable
class BatchRecorder(Protocol):
    """A recorder that can write several entries in one go (one database transaction)."""

    async def record_batch(
        self, items: Sequence[TranscriptItem], metrics: Sequence[TurnMetrics]
    ) -> None: ...


class QueuedRecorder:
    """Writes through another recorder from a background task, in order, so that a slow
    database never delays the conversation. `aclose()` waits until everything is written.

    Whatever queued up while the previous write ran is written together (one transaction when
    the inner recorder has `record_batch`), keeping only the latest version of each item. A
    failed write is logged and retried once; it never reaches the runtime.
    """

    def __init__(self, inner: CallRecorder) -> None:
        self._inner = inner
        self._queue: asyncio.Queue[TranscriptItem | TurnMetrics | None] = asyncio.Queue()
        self._writer = asyncio.create_task(self._drain(), name="voxline-recorder")

    async def record_item(self, item: TranscriptItem) -> None:
        self._queue.put_nowait(replace(item, data=dict(item.data)))

    async def record_metrics(self, metrics: TurnMetrics) -> None:
        self._queue.put_nowait(replace(metrics))

    async def aclose(self) -> None:
        self._queue.put_nowait(None)
        await asyncio.shield(self._writer)

    async def _drain(self) -> None:
        closing = False
        while not closing:
            entries = [await self._queue.get()]
            while not self._queue.empty():
                entries.append(self._queue.get_nowait())
            closing = None in entries
            items = {e.seq: e for e in entries if isinstance(e, TranscriptItem)}
            metrics = {e.turn: e for e in entries if isinstance(e, TurnMetrics)}
            if items or metrics:
                await self._write(list(items.values()), list(metrics.values()))

    async def _write(self, items: list[TranscriptItem], metrics: list[TurnMetrics]) -> None:
        for attempt in (1, 2):
            try:
                if isinstance(self._inner, BatchRecorder):
                    await self._inner.record_batch(items, metrics)
                else:
                    for item in items:
                        await self._inner.record_item(item)
                    for entry in metrics:
                        await self._inner.record_metrics(entry)
                return
            except Exception:
                logger.exception("recording failed (attempt %d of 2)", attempt)
