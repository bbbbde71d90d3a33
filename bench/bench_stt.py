"""Speech recognition on the held-out phone set: word error rate and finalize latency.

For each approach (a WhisperStt spec), every sample of `bench/stt_set` (utterances x voices x
noise conditions, 8 kHz mu-law, resampled to 16 kHz as the runtime does) is sent to a session
and finalized; the finalize is timed. The approaches take turns sample by sample, so a busy
machine slows them alike. Prints the CPU (model, avx2/avx512 flags) first, then WER
(normalized as `bench/stt_set/recognition_set.py` says) and finalize p50/p95 per approach,
per voice and condition. Needs espeak-ng and the `local` and `piper` extras.
Run: `.venv/bin/python bench/bench_stt.py [--every 1] [--voices ...] [--conditions ...]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import describe_machine, machine
from bench.stt_set.recognition_set import (
    CONDITIONS,
    DEFAULT_CACHE_DIR,
    VOICES,
    Sample,
    build_set,
    load_utterances,
    word_error_rate,
)

from voxline.agent_spec import WhisperStt
from voxline.audio.resample import resample
from voxline.providers.executor import InferenceExecutor
from voxline.providers.stt.whisper import SAMPLE_RATE, WhisperSpeechToText

APPROACHES = {
    "padded-30s": WhisperStt(),
    "window-10s": WhisperStt(encoder_window_s=10),
    "window-15s": WhisperStt(encoder_window_s=15),
    "window-5s": WhisperStt(encoder_window_s=5),
    "window-10s-beam3": WhisperStt(encoder_window_s=10, beam_size=3),
    "window-10s-beam5": WhisperStt(encoder_window_s=10, beam_size=5),
}


async def _finalize(stt: WhisperSpeechToText, sample: Sample) -> tuple[str, float]:
    session = await stt.open()
    try:
        await session.send(resample(sample.pcm, 8000, SAMPLE_RATE))
        started = time.perf_counter()
        text = await session.finalize()
        return text, 1000 * (time.perf_counter() - started)
    finally:
        await session.aclose()


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[round(fraction * (len(ordered) - 1))]


def _row(label: str, results: list[tuple[Sample, str, float]]) -> str:
    wer = word_error_rate([s.utterance.text for s, _, _ in results], [h for _, h, _ in results])
    times = [ms for _, _, ms in results]
    return (
        f"{label:<34} {len(results):>5} {100 * wer:>6.1f} "
        f"{statistics.median(times):>7.0f} {_percentile(times, 0.95):>7.0f}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=1, help="use every n-th utterance")
    parser.add_argument("--offset", type=int, default=0, help="starting from this one")
    parser.add_argument("--voices", nargs="+", choices=list(VOICES), default=list(VOICES))
    parser.add_argument(
        "--conditions", nargs="+", choices=list(CONDITIONS), default=list(CONDITIONS)
    )
    parser.add_argument(
        "--approaches", nargs="+", choices=list(APPROACHES), default=list(APPROACHES)
    )
    parser.add_argument("--threads", type=int, default=2, help="inference threads")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--show-errors", action="store_true", help="print every misrecognition")
    args = parser.parse_args()

    print(describe_machine())
    utterances = load_utterances()[args.offset :: args.every]
    samples = build_set(utterances, args.voices, args.conditions, args.cache_dir)
    print(
        f"{len(samples)} samples: {len(utterances)} utterances x {len(args.voices)} voices x "
        f"{len(args.conditions)} conditions; {args.threads} inference threads"
    )
    executor = InferenceExecutor(args.threads)
    try:
        stts = {
            name: await WhisperSpeechToText.create(APPROACHES[name], executor)
            for name in args.approaches
        }
        for stt in stts.values():
            await stt.warm_up()
        results: dict[str, list[tuple[Sample, str, float]]] = defaultdict(list)
        for sample in samples:
            for name, stt in stts.items():
                text, ms = await _finalize(stt, sample)
                results[name].append((sample, text, ms))
    finally:
        executor.shutdown()

    header = f"{'approach / voice / condition':<34} {'n':>5} {'WER %':>6}" + " p50 ms  p95 ms"
    print(f"\n{header}")
    summary: dict[str, dict[str, float]] = {}
    for name, rows in results.items():
        print(_row(name, rows))
        groups: dict[str, list[tuple[Sample, str, float]]] = defaultdict(list)
        for row in rows:
            groups[f"  {row[0].voice} / {row[0].condition}"].append(row)
        for label, group in groups.items():
            print(_row(label, group))
        summary[name] = {
            "wer": word_error_rate([s.utterance.text for s, _, _ in rows], [h for _, h, _ in rows]),
            "p50_ms": statistics.median(ms for _, _, ms in rows),
            "p95_ms": _percentile([ms for _, _, ms in rows], 0.95),
        }
    if args.show_errors:
        for name, rows in results.items():
            print(f"\n{name}: misrecognitions (reference | heard)")
            for sample, text, _ in rows:
                if word_error_rate([sample.utterance.text], [text]) > 0:
                    print(f"  {sample.voice}/{sample.condition}: {sample.utterance.text} | {text}")
    if args.json:
        figures = {"machine": machine(), "approaches": summary}
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
