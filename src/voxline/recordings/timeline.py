"""`StereoTimeline`: caller and agent audio placed on one clock, released as stereo frames.

Caller audio is laid end to end as it arrives (a phone line sends it continuously), jumping
forward only where the far end went quiet for a while. Agent audio is laid where it will play:
after the agent audio before it, never before it was sent. A `clear` cuts the agent channel
at the moment it happened, so the recording holds what the caller actually heard. Frames are
released `hold_s` behind the clock, once nothing can change them any more.
"""

from __future__ import annotations

import numpy as np

from voxline.audio.pcm import Pcm16

CALLER_GAP_S = 0.25
"""Caller audio arriving this much later than its place is laid at its arrival time."""


class StereoTimeline:
    """Not thread-safe: one writer thread owns it. Times are seconds since the call began."""

    def __init__(self, rate: int, *, hold_s: float = 0.5) -> None:
        self.rate = rate
        self._hold = round(hold_s * rate)
        self._base = 0
        """Absolute sample position of the first sample still buffered."""
        self._caller = np.zeros(0, dtype=np.int16)
        self._agent = np.zeros(0, dtype=np.int16)
        self._caller_end: int = 0
        self._agent_end: int = 0

    def add_caller(self, pcm: Pcm16, at_s: float) -> None:
        """Caller audio received at `at_s` (its last sample)."""
        arrived = round(at_s * self.rate) - int(pcm.shape[0])
        start = self._caller_end
        if arrived - start > CALLER_GAP_S * self.rate:
            start = arrived
        self._caller_end = self._put("caller", pcm, start)

    def add_agent(self, pcm: Pcm16, at_s: float) -> None:
        """Agent audio sent at `at_s`: it plays after the agent audio already queued."""
        start = max(self._agent_end, round(at_s * self.rate))
        self._agent_end = self._put("agent", pcm, start)

    def cut_agent(self, at_s: float) -> None:
        """The far end dropped the agent audio not played by `at_s`."""
        cut = max(round(at_s * self.rate), self._base)
        if cut < self._agent_end:
            self._agent[cut - self._base :] = 0
            self._agent_end = cut

    def release(self, now_s: float) -> np.ndarray:
        """The stereo frames (n x 2 int16) final by `now_s`, in order; none twice."""
        return self._take(round(now_s * self.rate) - self._hold)

    def release_all(self, now_s: float) -> np.ndarray:
        """The call is over at `now_s`: everything until then, and any audio past it."""
        return self._take(max(self._caller_end, self._agent_end, round(now_s * self.rate)))

    def _put(self, channel: str, pcm: Pcm16, start: int) -> int:
        end = start + int(pcm.shape[0])
        first = max(start, self._base)
        if first >= end:
            return end
        buffer = self._caller if channel == "caller" else self._agent
        needed = end - self._base
        if buffer.shape[0] < needed:
            buffer = np.concatenate([buffer, np.zeros(needed - buffer.shape[0], np.int16)])
        buffer[first - self._base : end - self._base] = pcm[first - start :]
        if channel == "caller":
            self._caller = buffer
        else:
            self._agent = buffer
        return end

    def _take(self, until: int) -> np.ndarray:
        count = until - self._base
        if count <= 0:
            return np.zeros((0, 2), dtype=np.int16)
        frames = np.zeros((count, 2), dtype=np.int16)
        caller = self._caller[:count]
        agent = self._agent[:count]
        frames[: caller.shape[0], 0] = caller
        frames[: agent.shape[0], 1] = agent
        self._caller = self._caller[count:]
        self._agent = self._agent[count:]
        self._base = until
        return frames
