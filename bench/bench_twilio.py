"""Twilio media-stream costs and the simulated caller's pacing.

1. CPU per media-stream message: parsing an inbound `media` message (JSON + base64) and
   building an outbound one, in microseconds, and what that means for 50 msgs/s per call.
2. Pacing of `SimulatedTwilioCall`: `--calls` simulated calls stream silence for `--seconds`
   to a local server that only reads; the server measures each frame's arrival against the
   ideal 20 ms schedule (jitter percentiles, and drift: lateness of the last frames).
Run: `.venv/bin/python bench/bench_twilio.py [--calls 50 --seconds 5]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable

from websockets.asyncio.server import ServerConnection, serve

from voxline.simulator.twilio_peer import SimulatedTwilioCall
from voxline.telephony.twilio.media import (
    MediaMessage,
    inbound_media_json,
    media_json,
    parse_inbound,
)


def _per_call_us(fn: Callable[[], object], runs: int = 200_000) -> float:
    start = time.perf_counter()
    for _ in range(runs):
        fn()
    return (time.perf_counter() - start) / runs * 1e6


def bench_messages() -> None:
    sid = "MZ" + "a" * 32
    payload = os.urandom(160)
    raw = inbound_media_json(1234, sid, 1233, 24640, payload)
    parse_us = _per_call_us(lambda: parse_inbound(raw))
    build_us = _per_call_us(lambda: media_json(sid, payload))
    per_call = (parse_us + build_us) * 50 / 1e6
    print(f"parse inbound media: {parse_us:.2f} us/msg")
    print(f"build outbound media: {build_us:.2f} us/msg")
    print(f"both at 50 msgs/s: {per_call * 100:.3f}% of a core per call")


async def bench_pacing(calls: int, seconds: float) -> None:
    lateness: list[float] = []
    drift: list[float] = []
    loop = asyncio.get_running_loop()

    async def server(ws: ServerConnection) -> None:
        arrivals: list[tuple[int, float]] = []
        async for raw in ws:
            message = parse_inbound(raw)
            if isinstance(message, MediaMessage):
                arrivals.append((message.chunk, loop.time()))
        if len(arrivals) < 2:
            return
        first_chunk, first_at = arrivals[0]
        late = [at - first_at - (chunk - first_chunk) * 0.02 for chunk, at in arrivals]
        lateness.extend(late)
        drift.append(statistics.mean(late[-10:]))

    async with serve(server, "127.0.0.1", 0) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        url = f"ws://127.0.0.1:{port}/stream"

        async def one_call() -> None:
            async with SimulatedTwilioCall(url):
                await asyncio.sleep(seconds)

        await asyncio.gather(*(one_call() for _ in range(calls)))
        await asyncio.sleep(0.2)

    ms = sorted(x * 1000 for x in lateness)
    print(f"pacing, {calls} calls x {seconds:.0f} s, {len(ms)} frames (ms late vs schedule):")
    print(
        f"  p50 {ms[len(ms) // 2]:.2f}  p99 {ms[int(len(ms) * 0.99)]:.2f}  max {ms[-1]:.2f}  "
        f"drift at end (mean of last 10 frames, worst call) {max(drift) * 1000:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    bench_messages()
    asyncio.run(bench_pacing(args.calls, args.seconds))


if __name__ == "__main__":
    main()
