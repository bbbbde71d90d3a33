"""Where a call's record goes as it happens: transcript items, metrics and call events.

Writes are queued and performed in order by one task (`run`), so recording never delays the
agent's audio, and an item's insert always lands before its updates. Every call event goes
through `emit`, which numbers and stamps it, hands it at once to the observers (live events,
metrics) and queues it for the transport (clients that show events). Failures to record or
emit are logged and skipped: a store hiccup or a closed client socket must not end the call.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from voxline.runtime.events import CallEvent, TurnMetricsEvent
from voxline.runtime.recording import CallRecorder, ItemRole, TranscriptItem, TurnMetrics
from voxline.runtime.transport import Transport

logger = logging.getLogger(__name__)

_Write = Callable[[], Awaitable[None]]
EventObserver = Callable[[CallEvent], None]
"""Called with each event as it is emitted; must return at once and never raise."""


class Journal:
    """Numbers transcript items, stamps them with call time, and records and emits them."""

    def __init__(
        self,
        recorder: CallRecorder,
        transport: Transport,
        *,
        clock: Callable[[], float],
        started_at: float,
        observers: Sequence[EventObserver] = (),
    ) -> None:
        self._recorder = recorder
        self._transport = transport
        self._clock = clock
        self._started_at = started_at
        self._observers = tuple(observers)
        self._seq = 0
        self._event_seq = 0
        self._queue: asyncio.Queue[tuple[str, _Write] | None] = asyncio.Queue()

    def begin(self, started_at: float) -> None:
        """The call starts now (`started_at`, clock): times are counted from it."""
        self._started_at = started_at

    def elapsed_ms(self) -> int:
        """Milliseconds since the call started."""
        return round((self._clock() - self._started_at) * 1000)

    def new_item(self, role: ItemRole, text: str, **data: Any) -> TranscriptItem:
        """A transcript item with the next sequence number, stamped now (not recorded yet)."""
        self._seq += 1
        return TranscriptItem(
            seq=self._seq, role=role, text=text, at_ms=self.elapsed_ms(), data=data
        )

    def record(self, item: TranscriptItem) -> None:
        """Insert or update `item` as it is now (later edits need another `record`)."""
        snapshot = dataclasses.replace(item, data=dict(item.data))
        self._queue.put_nowait(
            (f"transcript item {item.seq}", lambda: self._recorder.record_item(snapshot))
        )

    def metrics(self, metrics: TurnMetrics) -> None:
        """Record a turn's metrics and emit them as `turn.metrics`."""
        snapshot = dataclasses.replace(metrics)
        self._queue.put_nowait(
            (f"metrics of turn {metrics.turn}", lambda: self._recorder.record_metrics(snapshot))
        )
        self.emit(TurnMetricsEvent(**dataclasses.asdict(snapshot)))

    def emit(self, event: CallEvent) -> CallEvent:
        """Number and stamp `event`, tell the observers, and send it to the client (if it
        still listens) in order with the writes; returns the stamped event."""
        self._event_seq += 1
        stamped = event.model_copy(update={"seq": self._event_seq, "at_ms": self.elapsed_ms()})
        for observer in self._observers:
            try:
                observer(stamped)
            except Exception:
                logger.exception("an event observer failed on %s", stamped.type)
        self._queue.put_nowait((f"event {stamped.type}", lambda: self._transport.emit(stamped)))
        return stamped

    async def run(self) -> None:
        """Perform the queued writes in order until `close` (then return once all are done)."""
        while (entry := await self._queue.get()) is not None:
            what, write = entry
            try:
                await write()
            except Exception as exc:
                logger.warning("could not write %s: %s", what, exc)

    def close(self) -> None:
        """No more writes: `run` returns after the ones already queued."""
        self._queue.put_nowait(None)
