"""Latency of the embedded models through voxline's providers, as a call experiences it.

Loads and warms Whisper tiny.en, Piper en_US-joe-medium and llama.cpp Gemma 3 270M, then
measures, over `--runs` repetitions (median and p95): Whisper on a ~2.5 s utterance, Piper's
time to first audio for a short clause and for a sentence, and llama.cpp's time to first token
and decode speed on a short call transcript, both when the conversation so far is already in
llama.cpp's prefix cache (a turn of a running call) and when it is not (a new call).
Run: `.venv/bin/python bench/bench_models.py [--runs 20]`.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import soxr

from voxline.agent_spec import LlamaCppLlm, PiperTts, WhisperStt
from voxline.audio.pcm import Pcm16
from voxline.providers.base import (
    ChatMessage,
    LlmRequest,
    TextDelta,
    Usage,
)
from voxline.providers.executor import InferenceExecutor
from voxline.providers.llm.llama_cpp import LlamaCppLanguageModel
from voxline.providers.stt.whisper import WhisperSpeechToText
from voxline.providers.tts.piper import PiperTextToSpeech

UTTERANCE = "I would like to book a table for two people tomorrow."
CLAUSE = "Sure, one moment."
SENTENCE = "Thanks for calling Bright Smile Dental, how can I help you today?"
SYSTEM = "You are a friendly receptionist at Bright Smile Dental. Keep answers short."
CALLER_LINES = [
    "Hi, I'd like to book a cleaning next week.",
    "Do you have anything on Tuesday morning?",
    "How much does a cleaning cost?",
    "Can I bring my daughter too?",
    "Is there parking near the clinic?",
]


def _median_and_worst(samples: list[float], higher_is_better: bool) -> tuple[float, float]:
    """The median and the 95th-percentile worst sample (p95 of times, p5 of speeds)."""
    ordered = sorted(samples, reverse=higher_is_better)
    return statistics.median(ordered), ordered[round(0.95 * (len(ordered) - 1))]


async def _repeat(runs: int, measure: Callable[[], Awaitable[float]]) -> list[float]:
    return [await measure() for _ in range(runs)]


async def _timed(label: str, action: Awaitable[object]) -> None:
    started = time.perf_counter()
    await action
    print(f"{label:<44} {1000 * (time.perf_counter() - started):8.0f} ms")


async def _speech(tts: PiperTextToSpeech, text: str, rate: int) -> Pcm16:
    session = await tts.open()
    pcm = np.concatenate([chunk async for chunk in session.synthesize(text)])
    resampled: Pcm16 = soxr.resample(pcm, tts.sample_rate, rate)
    return resampled


async def _whisper_ms(stt: WhisperSpeechToText, audio: Pcm16) -> float:
    session = await stt.open()
    await session.send(audio)
    started = time.perf_counter()
    await session.finalize()
    return 1000 * (time.perf_counter() - started)


async def _first_audio_ms(tts: PiperTextToSpeech, text: str) -> float:
    session = await tts.open()
    started = time.perf_counter()
    first = 0.0
    async for _ in session.synthesize(text):
        first = first or time.perf_counter()
    return 1000 * (first - started)


def _transcript(index: int, cold: bool) -> LlmRequest:
    # A different first line defeats llama.cpp's prefix cache, as a new call would.
    system = f"Call {index}. {SYSTEM}" if cold else SYSTEM
    return LlmRequest(
        messages=(
            ChatMessage("system", system),
            ChatMessage("assistant", "Hello, thanks for calling Bright Smile Dental."),
            ChatMessage("user", CALLER_LINES[index % len(CALLER_LINES)]),
        )
    )


async def _llm_run(llm: LlamaCppLanguageModel, request: LlmRequest) -> tuple[float, float]:
    """(time to first token in ms, decode speed in tokens/s) of one reply."""
    session = await llm.open()
    started = time.perf_counter()
    first = last = 0.0
    tokens = 0
    async for event in session.stream(request):
        if isinstance(event, TextDelta):
            last = time.perf_counter()
            first = first or last
        elif isinstance(event, Usage):
            tokens = event.output_tokens
    speed = (tokens - 1) / (last - first) if tokens > 1 and last > first else float("nan")
    return 1000 * (first - started), speed


async def main(runs: int, cache_dir: Path | None) -> None:
    executor = InferenceExecutor(threads=2)
    print("once per process:")
    await _timed("  whisper load", WhisperSpeechToText.create(WhisperStt(), executor))
    await _timed("  piper load", PiperTextToSpeech.create(PiperTts(), executor))
    llm_create = LlamaCppLanguageModel.create(LlamaCppLlm(), executor, cache_dir=cache_dir)
    await _timed("  llama.cpp load (GGUF assembled if new)", llm_create)
    # Loaded models are cached: these return at once with the same models.
    stt = await WhisperSpeechToText.create(WhisperStt(), executor)
    tts = await PiperTextToSpeech.create(PiperTts(), executor)
    llm = await LlamaCppLanguageModel.create(LlamaCppLlm(), executor, cache_dir=cache_dir)
    await _timed("  whisper warm-up", stt.warm_up())
    await _timed("  piper warm-up", tts.warm_up())
    await _timed("  llama.cpp warm-up", llm.warm_up())

    audio = await _speech(tts, UTTERANCE, stt.sample_rate)
    seconds = audio.size / stt.sample_rate
    rows: list[tuple[str, list[float], str]] = [
        (
            f"whisper tiny.en, {seconds:.1f} s utterance",
            await _repeat(runs, lambda: _whisper_ms(stt, audio)),
            "ms",
        ),
        (
            f"piper first audio, clause ({len(CLAUSE)} chars)",
            await _repeat(runs, lambda: _first_audio_ms(tts, CLAUSE)),
            "ms",
        ),
        (
            f"piper first audio, sentence ({len(SENTENCE)} chars)",
            await _repeat(runs, lambda: _first_audio_ms(tts, SENTENCE)),
            "ms",
        ),
    ]
    for cold in (False, True):
        results = [await _llm_run(llm, _transcript(index, cold)) for index in range(runs)]
        kind = "new call" if cold else "next turn"
        rows.append((f"llama.cpp first token ({kind})", [ms for ms, _ in results], "ms"))
        speeds = [speed for _, speed in results if not math.isnan(speed)]
        rows.append((f"llama.cpp decode ({kind})", speeds, "tok/s"))
    executor.shutdown()

    print(f"\n{'measure':<44} {'median':>8} {'worst5%':>8}  unit   (runs: {runs})")
    for label, samples, unit in rows:
        median, worst = _median_and_worst(samples, higher_is_better=unit == "tok/s")
        print(f"{label:<44} {median:8.1f} {worst:8.1f}  {unit}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="repetitions per measure (>= 10)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="where the GGUF is assembled")
    args = parser.parse_args()
    asyncio.run(main(max(10, args.runs), args.cache_dir))
