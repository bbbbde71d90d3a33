"""A loudness-only voice activity detector for load benchmarks, not for real calls.

It maps each window's level in dBFS to a probability with a logistic curve centred on
-35 dBFS, so it costs a few microseconds per window where Silero costs a model run; it
cannot tell speech from any other sound of the same loudness.
"""

from __future__ import annotations

import math

import numpy as np

from voxline.audio.frames import FrameBuffer
from voxline.audio.pcm import Pcm16

_CENTER_DBFS = -35.0
_SLOPE_DB = 3.0  # -35 +/- 10 dB maps to ~0.03 / ~0.97
_FULL_SCALE_POWER = 32768.0**2
_POWER_FLOOR = 1e-12  # digital silence reads as -120 dBFS instead of -inf


def _probability(dbfs: float) -> float:
    return 1.0 / (1.0 + math.exp((_CENTER_DBFS - dbfs) / _SLOPE_DB))


class EnergyVadStream:
    """Speech probability from window loudness, with Silero's windows (32 ms at 8/16 kHz)."""

    def __init__(self, sample_rate: int) -> None:
        if sample_rate not in (8000, 16000):
            raise ValueError(f"energy VAD supports 8000 or 16000 Hz, got {sample_rate} Hz")
        self.sample_rate = sample_rate
        self.window_samples = sample_rate * 32 // 1000
        self._frames = FrameBuffer(self.window_samples)

    def push(self, pcm: Pcm16) -> list[float]:
        """Probability of every window completed by `pcm`, in order; keeps the remainder."""
        block = self._frames.push_block(pcm)
        if block.shape[0] == 0:
            return []
        energies: list[float] = np.einsum("ij,ij->i", block, block, dtype=np.float64).tolist()
        # A push completes one or two windows: scalar math beats numpy's per-call overhead.
        scale = 1.0 / (self.window_samples * _FULL_SCALE_POWER)
        return [_probability(10.0 * math.log10(e * scale + _POWER_FLOOR)) for e in energies]

    def reset(self) -> None:
        """Forget buffered audio."""
        self._frames.clear()
