"""What a call leaves behind: transcript items and per-turn metrics, recorded as they happen.

The runtime writes through `CallRecorder`; the store implements it. Items carry a sequence
number so that an agent item can be recorded when it starts and updated when it ends (finished
or interrupted, with the text the caller actually heard): a crash loses nothing already said.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

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


class QueuedRecorder:
    """Writes through another recorder from a background task, in order, so that a slow
    database never delays the conversation. `aclose()` waits until everything is written.

    A failed write is logged and retried once; it never reaches the runtime.
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
        while (entry := await self._queue.get()) is not None:
            for attempt in (1, 2):
                try:
                    if isinstance(entry, TranscriptItem):
                        await self._inner.record_item(entry)
                    else:
                        await self._inner.record_metrics(entry)
                    break
                except Exception:
                    logger.exception("recording failed (attempt %d of 2)", attempt)
