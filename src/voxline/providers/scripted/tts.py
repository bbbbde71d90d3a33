"""Scripted text-to-speech: a voiced-sounding tone whose length follows the text.

The signal is a 140 Hz harmonic tone (a low voice's pitch) under a 4 Hz syllable-rate envelope,
peaking at -12 dBFS: not silence, yet trivially cheap. Since 140 Hz is a multiple of 4 Hz the
signal repeats every 250 ms, so it is computed once per process and sliced.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import numpy.typing as npt

from voxline.agent_spec import ScriptedTts
from voxline.audio.pcm import Pcm16
from voxline.providers.base import ProviderError

SAMPLE_RATE = 16000
CHUNK_SAMPLES = SAMPLE_RATE // 10  # 100 ms
_PITCH_HZ = 140.0
_SYLLABLE_HZ = 4.0
_PEAK = 32768 * 10 ** (-12 / 20)
_FADE_SAMPLES = SAMPLE_RATE // 200  # 5 ms, so clause edges do not click


def _one_period() -> npt.NDArray[np.float32]:
    t = np.arange(int(SAMPLE_RATE / _SYLLABLE_HZ)) / SAMPLE_RATE
    harmonics = np.arange(1, 6)[:, np.newaxis]
    partials = np.sin(2 * np.pi * _PITCH_HZ * harmonics * t) / harmonics
    voice: npt.NDArray[np.float64] = partials.sum(axis=0)
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * _SYLLABLE_HZ * t)
    signal = voice * envelope
    peak = float(np.max(np.abs(signal)))
    return (signal * (_PEAK / peak)).astype(np.float32)


_PERIOD = _one_period()


def tone(start: int, count: int, total: int) -> Pcm16:
    """Samples [start, start + count) of a clause `total` samples long, faded at both ends."""
    index = np.arange(start, start + count)
    samples = _PERIOD[index % _PERIOD.size]
    fade = np.minimum(np.minimum(index, total - 1 - index) / _FADE_SAMPLES, 1.0)
    return np.round(samples * fade).astype(np.int16)


class ScriptedTextToSpeech:
    """A TextToSpeech producing `len(text) * ms_per_character` of tone per clause, at 16 kHz."""

    name = "scripted"
    sample_rate = SAMPLE_RATE

    def __init__(self, spec: ScriptedTts) -> None:
        self.spec = spec

    async def open(self) -> ScriptedTtsSession:
        return ScriptedTtsSession(self.spec)


class ScriptedTtsSession:
    """One call's scripted synthesizer: the first 100 ms chunk after `first_byte_ms`, the rest
    at once (faster than real time, like a real engine). Same text, same samples."""

    sample_rate = SAMPLE_RATE

    def __init__(self, spec: ScriptedTts) -> None:
        self._first_byte_s = spec.first_byte_ms / 1000
        self._samples_per_character = spec.ms_per_character * SAMPLE_RATE / 1000
        self._closed = False

    async def synthesize(self, text: str) -> AsyncIterator[Pcm16]:
        if self._closed:
            raise ProviderError("the scripted TTS session is closed")
        total = round(len(text) * self._samples_per_character)
        if total == 0:
            return
        await asyncio.sleep(self._first_byte_s)
        for start in range(0, total, CHUNK_SAMPLES):
            yield tone(start, min(CHUNK_SAMPLES, total - start), total)
            # Yield to the loop between chunks so many calls interleave and cancellation lands.
            await asyncio.sleep(0)

    async def aclose(self) -> None:
        self._closed = True
