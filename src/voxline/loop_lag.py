"""Event-loop lag: how late the loop wakes a task that asked to sleep, sampled continuously.

Every call's audio runs on the one event loop, so its lag is the delay every media frame,
mark and timer of every call suffers on top of its own work. Opt-in (VOXLINE_LAG_MONITOR):
sampling 50 times a second costs little, but is not free.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

_INTERVAL_S = 0.02
_WINDOW_S = 600.0


@dataclass(frozen=True, slots=True)
class LagSummary:
    """Lag samples taken in [`since_s`, `until_s`] on the monotonic clock, in milliseconds."""

    since_s: float
    until_s: float
    samples: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None


class LoopLagMonitor:
    """Samples the running loop's lag every `interval_s`, keeping the last `window_s`;
    `observer` (metrics) is given each sample in seconds."""

    def __init__(
        self,
        interval_s: float = _INTERVAL_S,
        window_s: float = _WINDOW_S,
        *,
        observer: Callable[[float], None] | None = None,
    ) -> None:
        if interval_s <= 0 or window_s < interval_s:
            raise ValueError("interval_s must be positive and window_s at least interval_s")
        self.interval_s = interval_s
        self._samples: deque[tuple[float, float]] = deque(maxlen=math.ceil(window_s / interval_s))
        self._task: asyncio.Task[None] | None = None
        self._observer = observer

    def start(self) -> None:
        """Begin sampling on the running loop (once)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._sample(), name="loop-lag")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @staticmethod
    def now() -> float:
        """The clock samples are stamped with (`time.monotonic`, seconds)."""
        return time.monotonic()

    def summary(self, since_s: float | None = None) -> LagSummary:
        """Percentiles of the samples taken since `since_s` (all kept samples when None)."""
        start = float("-inf") if since_s is None else since_s
        lags = sorted(lag for at, lag in self._samples if at >= start)
        first = next((at for at, _ in self._samples if at >= start), self.now())
        if not lags:
            return LagSummary(first, self.now(), 0, None, None, None)
        return LagSummary(
            since_s=first,
            until_s=self.now(),
            samples=len(lags),
            p50_ms=_percentile(lags, 0.50) * 1000,
            p99_ms=_percentile(lags, 0.99) * 1000,
            max_ms=lags[-1] * 1000,
        )

    async def _sample(self) -> None:
        while True:
            asked = self.now()
            await asyncio.sleep(self.interval_s)
            woke = self.now()
            lag = max(0.0, woke - asked - self.interval_s)
            self._samples.append((woke, lag))
            if self._observer is not None:
                self._observer(lag)


def _percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]
