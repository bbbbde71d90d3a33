"""CPU cost of the per-call audio hot path, in microseconds of CPU per second of call audio.

Each case feeds a few seconds of audio in 20 ms frames (as transports deliver it) and is
repeated; the table shows the median and p95 over repetitions and how many concurrent calls
one core could carry at the median. Run: `.venv/bin/python bench/bench_audio.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable

import numpy as np

from voxline.audio.frames import FRAME_MS, frame_samples
from voxline.audio.mulaw import decode_mulaw, encode_mulaw
from voxline.audio.pcm import Pcm16
from voxline.audio.resample import StreamResampler
from voxline.audio.vad import open_vad
from voxline.providers.executor import InferenceExecutor

Case = Callable[[], Callable[[], None]]  # builds fresh per-call state, returns one run


def _speechlike(rate: int, seconds: float) -> Pcm16:
    """Voiced-ish test audio: a few harmonics plus noise, loud enough to count as speech."""
    t = np.arange(int(rate * seconds)) / rate
    signal = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 6))
    noise = np.random.default_rng(0).standard_normal(t.size) * 0.05
    return (6000 * (signal + noise)).astype(np.int16)


def _frames(pcm: Pcm16, rate: int) -> list[Pcm16]:
    size = frame_samples(rate)
    return [pcm[i : i + size] for i in range(0, pcm.size - size + 1, size)]


def _mulaw_case(seconds: float) -> Case:
    payloads = [encode_mulaw(frame) for frame in _frames(_speechlike(8000, seconds), 8000)]

    def build() -> Callable[[], None]:
        def run() -> None:
            for payload in payloads:
                encode_mulaw(decode_mulaw(payload))

        return run

    return build


def _resample_case(in_rate: int, out_rate: int, seconds: float) -> Case:
    frames = _frames(_speechlike(in_rate, seconds), in_rate)

    def build() -> Callable[[], None]:
        resampler = StreamResampler(in_rate, out_rate)

        def run() -> None:
            for frame in frames:
                resampler.process(frame)

        return run

    return build


def _vad_case(kind: str, rate: int, seconds: float) -> Case:
    frames = _frames(_speechlike(rate, seconds), rate)

    def build() -> Callable[[], None]:
        vad = open_vad(kind, rate)  # type: ignore[arg-type]

        def run() -> None:
            for frame in frames:
                vad.push(frame)

        return run

    return build


def _measure_executor_hop(seconds: float, repetitions: int) -> tuple[float, float]:
    """What handing each 20 ms frame to the inference pool and back costs, doing nothing there."""
    hops = int(seconds * 1000 / FRAME_MS)

    async def run() -> list[float]:
        executor = InferenceExecutor(threads=2)
        samples = []
        try:
            await executor.run(int)
            for _ in range(repetitions):
                start = time.process_time()
                for _ in range(hops):
                    await executor.run(int)
                samples.append((time.process_time() - start) / seconds * 1e6)
        finally:
            executor.shutdown()
        return samples

    return _summarize(asyncio.run(run()))


def _summarize(samples: list[float]) -> tuple[float, float]:
    return float(np.median(samples)), float(np.percentile(samples, 95))


def _measure(case: Case, seconds: float, repetitions: int) -> tuple[float, float]:
    samples: list[float] = []
    case()()  # warm up: model load, lazy tables, allocator
    for _ in range(repetitions):
        run = case()
        start = time.process_time()
        run()
        samples.append((time.process_time() - start) / seconds * 1e6)
    return _summarize(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="audio per repetition")
    parser.add_argument("--repetitions", type=int, default=25)
    args = parser.parse_args()
    seconds: float = args.seconds
    cases: list[tuple[str, Case]] = [
        ("mu-law decode+encode, 20 ms frames", _mulaw_case(seconds)),
        ("resample stream 8k -> 16k", _resample_case(8000, 16000, seconds)),
        ("resample stream 22050 -> 8k", _resample_case(22050, 8000, seconds)),
        ("silero VAD 8k", _vad_case("silero", 8000, seconds)),
        ("silero VAD 16k", _vad_case("silero", 16000, seconds)),
        ("energy VAD 8k", _vad_case("energy", 8000, seconds)),
        ("energy VAD 16k", _vad_case("energy", 16000, seconds)),
    ]
    print(f"CPU per second of call audio ({args.repetitions} x {seconds:g} s, process time)")
    print(f"{'case':<42} {'median us':>10} {'p95 us':>10} {'calls/core':>11}")
    reps: int = args.repetitions
    for name, case in cases:
        median, p95 = _measure(case, seconds, reps)
        _print_row(name, median, p95)
    _print_row("inference-pool round trip per 20 ms frame", *_measure_executor_hop(seconds, reps))


def _print_row(name: str, median: float, p95: float) -> None:
    print(f"{name:<42} {median:>10.0f} {p95:>10.0f} {1e6 / median:>11.0f}")


if __name__ == "__main__":
    main()
