"""`OggOpusEncoder`: stereo PCM16 in, an Ogg/Opus file out, through FFmpeg's libopus (PyAV).

Ogg pages are written out at least every `page_s` seconds and the file is flushed with each,
so a crash leaves a playable file missing at most the last page.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

FRAME_MS = 20
PAGE_S = 0.5


class OggOpusEncoder:
    """Not thread-safe: owned by one writer thread. `close()` pads the last frame and ends
    the stream; the file is complete only then."""

    def __init__(self, path: Path, *, rate: int, bitrate: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(
            str(path),
            "w",
            format="ogg",
            options={"page_duration": str(int(PAGE_S * 1_000_000)), "flush_packets": "1"},
        )
        self._stream = self._container.add_stream("libopus", rate=rate, layout="stereo")
        self._stream.bit_rate = bitrate
        self._rate = rate
        self._frame = rate * FRAME_MS // 1000
        self._pending = np.zeros((0, 2), dtype=np.int16)
        self._pts = 0

    def write(self, frames: np.ndarray) -> None:
        """Append `frames` (n x 2 int16: caller, agent)."""
        self._pending = np.concatenate([self._pending, frames])
        whole = self._pending.shape[0] - self._pending.shape[0] % self._frame
        for start in range(0, whole, self._frame):
            self._encode(self._pending[start : start + self._frame])
        self._pending = self._pending[whole:]

    def close(self) -> None:
        if self._pending.shape[0]:
            tail = np.zeros((self._frame, 2), dtype=np.int16)
            tail[: self._pending.shape[0]] = self._pending
            self._encode(tail)
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()

    def _encode(self, frame: np.ndarray) -> None:
        audio = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(frame).reshape(1, -1), format="s16", layout="stereo"
        )
        audio.sample_rate = self._rate
        audio.pts = self._pts
        self._pts += frame.shape[0]
        for packet in self._stream.encode(audio):
            self._container.mux(packet)
