"""The caller's side of the line: queued speech cut into 20 ms frames, silence in between."""

from __future__ import annotations

from collections import deque

import numpy as np

from voxline.audio.pcm import Pcm16
from voxline.simulator.metrics import CallerUtterance

FRAME_SAMPLES = 160  # 20 ms at 8 kHz, what Twilio sends per media message


class CallerAudio:
    """A queue of utterances read one frame at a time; a frame may end one and start another."""

    def __init__(self) -> None:
        self._queue: deque[tuple[CallerUtterance, Pcm16]] = deque()
        self._offset = 0

    def queue(self, pcm: Pcm16, now: float) -> CallerUtterance:
        if pcm.dtype != np.int16 or pcm.ndim != 1:
            raise ValueError(f"caller audio must be 1-D int16 PCM at 8 kHz, got {pcm.dtype}")
        if len(pcm) == 0:
            raise ValueError("caller audio is empty")
        utterance = CallerUtterance(samples=len(pcm), queued_at=now)
        self._queue.append((utterance, pcm))
        return utterance

    def next_frame(self, sent_at: float) -> Pcm16 | None:
        """The next frame (None: silence), stamping utterances that start or end in it."""
        if not self._queue:
            return None
        frame = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        filled = 0
        while filled < FRAME_SAMPLES and self._queue:
            utterance, pcm = self._queue[0]
            if self._offset == 0:
                utterance.mark_started(sent_at)
            take = min(FRAME_SAMPLES - filled, len(pcm) - self._offset)
            frame[filled : filled + take] = pcm[self._offset : self._offset + take]
            filled += take
            self._offset += take
            if self._offset == len(pcm):
                utterance.mark_ended(sent_at)
                self._queue.popleft()
                self._offset = 0
        return frame

    def pending(self) -> bool:
        return bool(self._queue)
