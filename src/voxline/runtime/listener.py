"""Caller audio in: speech probabilities for turn detection, and segments of audio for STT.

VAD runs inline on every frame, at the transport rate when it is 8 or 16 kHz (else resampled
to 16 kHz). STT receives audio only while a segment is open, at its own rate; opening a
segment first sends the recent past (the voiced run that confirmed speech plus a pre-roll),
so the onset of speech is never lost.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from voxline.audio.resample import StreamResampler
from voxline.audio.vad import VAD_SAMPLE_RATES, VadKind, open_vad
from voxline.providers.base import Pcm16

PRE_ROLL_MS = 300
_EMPTY = np.empty(0, dtype=np.int16)


class CallerAudio:
    """One call's inbound audio path. `max_voiced_ms` is the longest voiced run that can
    precede a confirmed start (it sizes the look-back buffer)."""

    def __init__(
        self,
        input_rate: int,
        stt_rate: int,
        *,
        vad: VadKind,
        max_voiced_ms: int,
        pre_roll_ms: int = PRE_ROLL_MS,
    ) -> None:
        vad_rate = input_rate if input_rate in VAD_SAMPLE_RATES else 16000
        self._vad = open_vad(vad, vad_rate)
        self._vad_resampler = (
            StreamResampler(input_rate, vad_rate) if vad_rate != input_rate else None
        )
        self.window_ms = self._vad.window_samples * 1000 / vad_rate
        self._input_rate = input_rate
        self._stt_rate = stt_rate
        self._pre_roll_ms = pre_roll_ms
        self._capacity = input_rate * (max_voiced_ms + pre_roll_ms + 100) // 1000
        self._recent: deque[Pcm16] = deque()
        self._recent_samples = 0
        self._segment: StreamResampler | None = None

    @property
    def segment_open(self) -> bool:
        return self._segment is not None

    def speech_probabilities(self, pcm: Pcm16) -> list[float]:
        """Remember `pcm` for look-back and return the VAD probability of each window it
        completes."""
        self._remember(pcm)
        if self._vad_resampler is not None:
            pcm = self._vad_resampler.process(pcm)
        return self._vad.push(pcm)

    def open_segment(self, voiced_ms: float) -> Pcm16:
        """Start sending to STT; returns the look-back audio (the voiced run plus the
        pre-roll) at the STT rate."""
        self._segment = StreamResampler(self._input_rate, self._stt_rate)
        wanted = int(self._input_rate * (voiced_ms + self._pre_roll_ms) / 1000)
        recent = np.concatenate(self._recent) if self._recent else _EMPTY
        return self._segment.process(recent[-wanted:] if wanted else _EMPTY)

    def segment_audio(self, pcm: Pcm16) -> Pcm16 | None:
        """`pcm` at the STT rate while a segment is open, else None."""
        if self._segment is None:
            return None
        return self._segment.process(pcm)

    def close_segment(self) -> Pcm16:
        """Stop sending to STT; returns the resampler's held-back tail."""
        segment, self._segment = self._segment, None
        return segment.flush() if segment is not None else _EMPTY

    def _remember(self, pcm: Pcm16) -> None:
        self._recent.append(pcm.copy())  # the transport may reuse its frame buffers
        self._recent_samples += pcm.shape[0]
        while self._recent and self._recent_samples - self._recent[0].shape[0] >= self._capacity:
            self._recent_samples -= self._recent.popleft().shape[0]
