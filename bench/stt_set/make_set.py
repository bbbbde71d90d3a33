"""Make (or check) the held-out recognition set's cached speech, and say what it holds.

Run: `.venv/bin/python bench/stt_set/make_set.py [--cache-dir DIR]` (needs espeak-ng and the
`piper` extra). The bench and the test make what they need themselves; this warms the cache.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.stt_set.recognition_set import (
    CONDITIONS,
    DEFAULT_CACHE_DIR,
    VOICES,
    build_set,
    load_utterances,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    args = parser.parse_args()
    utterances = load_utterances()
    started = time.perf_counter()
    samples = build_set(utterances, cache_dir=args.cache_dir)
    seconds = sum(sample.pcm.size for sample in samples) / 8000
    print(
        f"{len(utterances)} utterances x {len(VOICES)} voices ({', '.join(VOICES)}) x "
        f"{len(CONDITIONS)} conditions ({', '.join(CONDITIONS)}) = {len(samples)} samples, "
        f"{seconds / 60:.1f} min of audio, made in {time.perf_counter() - started:.1f} s "
        f"(cache: {args.cache_dir})"
    )


if __name__ == "__main__":
    main()
