"""Voice activity detection: one small per-call interface over interchangeable detectors.

`open_vad("silero", rate)` is the real detector (Silero VAD v5 on onnxruntime);
`open_vad("energy", rate)` is a cheap loudness detector meant for load benchmarks. Both take
mono PCM16 at 8 or 16 kHz in chunks of any length; resampling other rates is the caller's job.
"""

from __future__ import annotations

from typing import Literal, Protocol

from voxline.audio.energy_vad import EnergyVadStream
from voxline.audio.pcm import Pcm16
from voxline.audio.silero_vad import SileroVadStream

VadKind = Literal["silero", "energy"]
VAD_SAMPLE_RATES = (8000, 16000)


class VadStream(Protocol):
    """One call's detector, holding that call's state. Not thread-safe: one caller at a time."""

    sample_rate: int
    window_samples: int

    def push(self, pcm: Pcm16) -> list[float]:
        """Speech probability (0..1) of every window completed by `pcm`, in order; the
        samples that do not fill a window yet are kept for the next push."""
        ...

    def reset(self) -> None:
        """Forget all audio and state, as if newly opened."""
        ...


def open_vad(kind: VadKind, sample_rate: int) -> VadStream:
    """A new detector for one stream at `sample_rate` (8000 or 16000, else ValueError).

    'silero' loads the process-wide model on first use and raises `VadModelUnavailable`
    (naming the package to install) when it cannot.
    """
    if sample_rate not in VAD_SAMPLE_RATES:
        raise ValueError(
            f"VAD needs 8000 or 16000 Hz audio, got {sample_rate} Hz: resample it first"
        )
    if kind == "silero":
        return SileroVadStream(sample_rate)
    if kind == "energy":
        return EnergyVadStream(sample_rate)
    raise ValueError(f"unknown VAD kind {kind!r}: expected 'silero' or 'energy'")
