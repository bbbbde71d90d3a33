"""PCM16 framing helpers: fixed-size frames from arbitrary chunks, sizes, bytes, silence.

Internal audio frames are 20 ms (`FRAME_MS`). All PCM is mono numpy int16, little endian on
the wire.
"""

from __future__ import annotations

import numpy as np

from voxline.audio.pcm import Pcm16

FRAME_MS = 20


def check_pcm16(pcm: Pcm16) -> None:
    """Raise ValueError unless `pcm` is a 1-D int16 array (mono PCM16)."""
    if not isinstance(pcm, np.ndarray) or pcm.dtype != np.int16 or pcm.ndim != 1:
        kind = f"{pcm.ndim}-D {pcm.dtype} array" if isinstance(pcm, np.ndarray) else type(pcm)
        raise ValueError(f"expected mono PCM16 (1-D int16 array), got {kind}")


def frame_samples(rate: int, ms: int = FRAME_MS) -> int:
    """Samples in `ms` milliseconds at `rate` Hz; ValueError unless that is a whole number."""
    if rate <= 0 or ms <= 0:
        raise ValueError(f"rate and duration must be positive, got rate={rate}, ms={ms}")
    samples, remainder = divmod(rate * ms, 1000)
    if remainder:
        raise ValueError(f"{ms} ms at {rate} Hz is not a whole number of samples")
    return samples


def duration_ms(pcm: Pcm16, rate: int) -> float:
    """Duration of `pcm` at `rate` Hz, in milliseconds."""
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    return len(pcm) * 1000.0 / rate


def silence(rate: int, ms: int) -> Pcm16:
    """A new array of `ms` milliseconds of digital silence at `rate` Hz."""
    return np.zeros(frame_samples(rate, ms), dtype=np.int16)


def pcm16_from_bytes(data: bytes) -> Pcm16:
    """Little-endian PCM16 bytes as samples (a read-only view of `data`, no copy)."""
    if len(data) % 2:
        raise ValueError(f"PCM16 needs an even number of bytes, got {len(data)}")
    return np.frombuffer(data, dtype="<i2").astype(np.int16, copy=False)


def pcm16_to_bytes(pcm: Pcm16) -> bytes:
    """Samples as little-endian PCM16 bytes."""
    check_pcm16(pcm)
    return pcm.astype("<i2", copy=False).tobytes()


class FrameBuffer:
    """Cuts a stream of arbitrary-length PCM16 chunks into frames of exactly `frame_samples`.

    Samples that do not fill a frame yet are kept for the next push. Frames may be views of
    the pushed array: treat them as read-only. Not thread-safe (one per stream).
    """

    def __init__(self, frame_samples: int) -> None:
        if frame_samples <= 0:
            raise ValueError(f"frame_samples must be positive, got {frame_samples}")
        self.frame_samples = frame_samples
        self._pending = np.empty(frame_samples, dtype=np.int16)
        self._fill = 0
        self._no_frames = np.empty((0, frame_samples), dtype=np.int16)
        self._no_frames.flags.writeable = False

    @property
    def pending(self) -> int:
        """Samples buffered that do not make a whole frame yet."""
        return self._fill

    def push(self, pcm: Pcm16) -> list[Pcm16]:
        """Add `pcm` and return every frame now complete, in order."""
        return list(self.push_block(pcm))

    def push_block(self, pcm: Pcm16) -> Pcm16:
        """Like `push`, but the complete frames come as one 2-D array, one frame per row."""
        check_pcm16(pcm)
        size = self.frame_samples
        fill = self._fill
        count = (fill + pcm.shape[0]) // size
        if count == 0:
            self._pending[fill : fill + pcm.shape[0]] = pcm
            self._fill += pcm.shape[0]
            return self._no_frames
        used = count * size - fill
        if fill == 0:
            block = pcm[:used].reshape(count, size)
        else:
            block = np.empty((count, size), dtype=np.int16)
            flat = block.reshape(-1)
            flat[:fill] = self._pending[:fill]
            flat[fill:] = pcm[:used]
        rest = pcm.shape[0] - used
        self._pending[:rest] = pcm[used:]
        self._fill = rest
        return block

    def drain(self) -> Pcm16:
        """Return the buffered partial frame (possibly empty) as a new array and forget it."""
        rest = self._pending[: self._fill].copy()
        self._fill = 0
        return rest

    def clear(self) -> None:
        """Drop the buffered partial frame."""
        self._fill = 0
