"""`RecordingWriter`: one call's recording, encoded on a thread of its own.

The call's tasks only put audio on a queue (`caller`, `agent`, `cut` never block); the thread
resamples, lays both channels on the timeline, encodes what is final and hands the same
stereo frames to a listener (listen-in). `close()` drains the queue and ends the file.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from voxline.audio.pcm import Pcm16
from voxline.audio.resample import StreamResampler
from voxline.recordings.encoder import OggOpusEncoder
from voxline.recordings.timeline import StereoTimeline

logger = logging.getLogger(__name__)

RATE = 16_000
"""The recording's sample rate: wideband, enough for phone and browser speech."""
_TICK_S = 0.25

FramesListener = Callable[[bytes], None]
"""Receives released stereo frames (interleaved PCM16 at `RATE`), on the writer thread."""


@dataclass(frozen=True, slots=True)
class _Audio:
    channel: Literal["caller", "agent"]
    pcm: Pcm16
    rate: int
    at_s: float


@dataclass(frozen=True, slots=True)
class _Cut:
    at_s: float


class RecordingWriter:
    """Records one call into `path`; `clock` is the runtime's (monotonic seconds)."""

    def __init__(
        self,
        path: Path,
        *,
        bitrate: int = 32_000,
        clock: Callable[[], float] = time.monotonic,
        listener: FramesListener | None = None,
    ) -> None:
        self.path = path
        self._clock = clock
        self._started = clock()
        self._listener = listener
        self._queue: queue.SimpleQueue[_Audio | _Cut | None] = queue.SimpleQueue()
        self._encoder = OggOpusEncoder(path, rate=RATE, bitrate=bitrate)
        self._timeline = StereoTimeline(RATE)
        self._resamplers: dict[tuple[str, int], StreamResampler] = {}
        self._failed = False
        self._thread = threading.Thread(target=self._run, name="voxline-recording", daemon=True)
        self._thread.start()

    def caller(self, pcm: Pcm16, rate: int) -> None:
        """Caller audio just received."""
        self._queue.put(_Audio("caller", pcm, rate, self._clock() - self._started))

    def agent(self, pcm: Pcm16, rate: int) -> None:
        """Agent audio just sent (it plays after the agent audio before it)."""
        self._queue.put(_Audio("agent", pcm, rate, self._clock() - self._started))

    def cut(self) -> None:
        """The agent audio not yet played was dropped just now."""
        self._queue.put(_Cut(self._clock() - self._started))

    def close(self) -> None:
        """Write everything still queued and end the file (blocks: run it off the loop)."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            try:
                entry = self._queue.get(timeout=_TICK_S)
            except queue.Empty:
                # Nothing queued: everything up to now is known.
                self._emit(self._timeline.release(self._clock() - self._started))
                continue
            if entry is None:
                break
            self._apply(entry)
            # Entries still queued are no older than this one: release up to its time.
            self._emit(self._timeline.release(entry.at_s))
        self._emit(self._timeline.release_all(self._clock() - self._started))
        try:
            self._encoder.close()
        except Exception:
            logger.exception("recording %s could not be finished", self.path.name)

    def _apply(self, entry: _Audio | _Cut) -> None:
        if isinstance(entry, _Cut):
            self._timeline.cut_agent(entry.at_s)
            return
        key = (entry.channel, entry.rate)
        resampler = self._resamplers.get(key)
        if resampler is None:
            resampler = self._resamplers[key] = StreamResampler(entry.rate, RATE)
        pcm = resampler.process(entry.pcm)
        if entry.channel == "caller":
            self._timeline.add_caller(pcm, entry.at_s)
        else:
            self._timeline.add_agent(pcm, entry.at_s)

    def _emit(self, frames: np.ndarray) -> None:
        if not frames.shape[0]:
            return
        if not self._failed:
            try:
                self._encoder.write(frames)
            except Exception:
                # The call goes on without its recording; the file keeps what was written.
                self._failed = True
                logger.exception("recording %s failed", self.path.name)
        if self._listener is not None:
            try:
                self._listener(frames.tobytes())
            except Exception:
                # Listen-in is a courtesy: the recording goes on without it.
                self._listener = None
                logger.exception("listen-in of %s stopped", self.path.name)
