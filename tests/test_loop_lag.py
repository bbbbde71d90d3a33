"""The event-loop lag monitor."""

import asyncio
import time

import pytest

from voxline.loop_lag import LoopLagMonitor


async def test_a_blocked_loop_shows_as_lag_of_at_least_the_block() -> None:
    monitor = LoopLagMonitor(interval_s=0.005)
    monitor.start()
    await asyncio.sleep(0.02)
    # Blocks the loop, as a slow synchronous call would.
    asyncio.get_running_loop().call_soon(time.sleep, 0.1)
    await asyncio.sleep(0.02)
    await monitor.aclose()

    summary = monitor.summary()
    assert summary.samples > 0
    assert summary.max_ms is not None and summary.max_ms >= 90


async def test_since_keeps_only_later_samples() -> None:
    monitor = LoopLagMonitor(interval_s=0.005)
    monitor.start()
    await asyncio.sleep(0.03)
    later = monitor.now()
    await asyncio.sleep(0.03)
    await monitor.aclose()

    everything, recent = monitor.summary(), monitor.summary(later)
    assert 0 < recent.samples < everything.samples
    assert recent.since_s >= later


def test_a_window_shorter_than_the_interval_is_refused() -> None:
    with pytest.raises(ValueError):
        LoopLagMonitor(interval_s=1.0, window_s=0.5)
