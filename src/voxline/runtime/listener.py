"""Caller audio in: speech probabilities for turn detection, and segments of audio for STT.

VAD runs inline on every frame, at the transport rate when it is 8 or 16 kHz (else resampled
to 16 kHz). STT receives audio only while a segment is open, at its own rate; opening a
segment first sends the recent past (the voiced run that confirmed speech plus a pre-roll),
so the onset of speech is never lost. A recognizer that takes mu-law (phone calls) gets the
line's bytes as they came, pre-roll included; a frame that arrives without them (a transport
that only has PCM) is encoded, which costs a few microseconds and no resampling.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from voxline.audio.mulaw import encode_mulaw
from voxline.audio.pcm import Pcm16
from voxline.audio.resample import StreamResampler
from voxline.audio.vad import VAD_SAMPLE_RATES, VadKind, open_vad

PRE_ROLL_MS = 300
MULAW_RATE = 8000
_EMPTY = np.empty(0, dtype=np.int16)

SttAudio = Pcm16 | bytes
"""Audio for the recognizer: PCM16 at its rate, or mu-law bytes at 8 kHz when it takes them."""


class CallerAudio:
    """One call's inbound audio path. `max_voiced_ms` is the longest voiced run that can
    precede a confirmed start (it sizes the look-back buffer); with `stt_mulaw` (input and
    STT at 8 kHz) segments carry mu-law bytes instead of PCM16."""

    def __init__(
        self,
        input_rate: int,
        stt_rate: int,
        *,
        vad: VadKind,
        max_voiced_ms: int,
        pre_roll_ms: int = PRE_ROLL_MS,
        stt_mulaw: bool = False,
    ) -> None:
        if stt_mulaw and not input_rate == stt_rate == MULAW_RATE:
            raise ValueError(f"mu-law input needs {MULAW_RATE} Hz, not {input_rate}/{stt_rate}")
        self._stt_mulaw = stt_mulaw
        self._recent_mulaw: deque[bytes] = deque()
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

    def speech_probabilities(self, pcm: Pcm16, mulaw: bytes | None = None) -> list[float]:
        """Remember `pcm` (and `mulaw`, the same audio as the line sent it) for look-back and
        return the VAD probability of each window it completes."""
        self._remember(pcm, mulaw)
        if self._vad_resampler is not None:
            pcm = self._vad_resampler.process(pcm)
        return self._vad.push(pcm)

    def open_segment(self, voiced_ms: float) -> SttAudio:
        """Start sending to STT; returns the look-back audio (the voiced run plus the
        pre-roll) for the recognizer."""
        self._segment = StreamResampler(self._input_rate, self._stt_rate)
        wanted = int(self._input_rate * (voiced_ms + self._pre_roll_ms) / 1000)
        if self._stt_mulaw:
            return b"".join(self._recent_mulaw)[-wanted:] if wanted else b""
        recent = np.concatenate(self._recent) if self._recent else _EMPTY
        return self._segment.process(recent[-wanted:] if wanted else _EMPTY)

    def segment_audio(self, pcm: Pcm16, mulaw: bytes | None = None) -> SttAudio | None:
        """The frame for the recognizer while a segment is open, else None."""
        if self._segment is None:
            return None
        if self._stt_mulaw:
            return mulaw if mulaw is not None else encode_mulaw(pcm)
        return self._segment.process(pcm)

    def close_segment(self) -> SttAudio:
        """Stop sending to STT; returns the resampler's held-back tail."""
        segment, self._segment = self._segment, None
        if self._stt_mulaw:
            return b""  # nothing is held back: bytes go out as they come
        return segment.flush() if segment is not None else _EMPTY

    def _remember(self, pcm: Pcm16, mulaw: bytes | None) -> None:
        if self._stt_mulaw:
            # One byte per sample, so the sample counting below holds for both kinds.
            self._recent_mulaw.append(mulaw if mulaw is not None else encode_mulaw(pcm))
        else:
            self._recent.append(pcm.copy())  # the transport may reuse its frame buffers
        self._recent_samples += pcm.shape[0]
        recent: deque[bytes] | deque[Pcm16]
        recent = self._recent_mulaw if self._stt_mulaw else self._recent
        while recent and self._recent_samples - len(recent[0]) >= self._capacity:
            self._recent_samples -= len(recent.popleft())
