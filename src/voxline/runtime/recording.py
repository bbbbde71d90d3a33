"""What a call leaves behind: transcript items and per-turn metrics, recorded as they happen.

The runtime writes through `CallRecorder`; the store implements it. Items carry a sequence
number so that an agent item can be recorded when it starts and updated when it ends (finished
or interrupted, with the text the caller actually heard): a crash loses nothing already said.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

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
