"""Twilio's outbound playout buffer as a pure model: what plays when, and when marks echo.

Audio plays back to back at 8 kHz from the moment it arrives (or when what is buffered ahead
of it ends). A mark is due when all audio received before it has played, at once if nothing
is buffered. `clear` cuts the audio playing now, drops what has not started, and hands back
every pending mark to be echoed at once. Times are seconds on any monotonic clock, passed in,
so the model is exact and testable without waiting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from voxline.audio.pcm import Pcm16

SAMPLE_RATE = 8000


@dataclass(slots=True)
class Segment:
    """One outbound media message as the caller hears it."""

    received_at: float
    start: float
    audio: Pcm16
    cut_at: float | None = None

    @property
    def end(self) -> float:
        """When it stops playing: its natural end, or the moment a `clear` cut it."""
        natural = self.start + len(self.audio) / SAMPLE_RATE
        return natural if self.cut_at is None else min(natural, self.cut_at)

    @property
    def played_samples(self) -> int:
        return round((self.end - self.start) * SAMPLE_RATE)

    @property
    def played_audio(self) -> Pcm16:
        return self.audio[: self.played_samples]


@dataclass(frozen=True, slots=True)
class PendingMark:
    name: str
    received_at: float
    due_at: float


class PlayoutBuffer:
    """The buffer of one stream. Call its methods in the order messages arrive."""

    def __init__(self) -> None:
        self.segments: list[Segment] = []
        self._busy_until = float("-inf")
        self._marks: list[PendingMark] = []

    def busy_until(self) -> float:
        """When everything buffered so far will have played."""
        return self._busy_until

    def push(self, now: float, audio: Pcm16) -> Segment:
        segment = Segment(received_at=now, start=max(now, self._busy_until), audio=audio)
        self._busy_until = segment.start + len(audio) / SAMPLE_RATE
        self.segments.append(segment)
        return segment

    def mark(self, now: float, name: str) -> PendingMark:
        """Queue a mark, due once the audio ahead of it has played (at once if none is)."""
        pending = PendingMark(name=name, received_at=now, due_at=max(now, self._busy_until))
        self._marks.append(pending)
        return pending

    def pop_due_marks(self, now: float) -> list[PendingMark]:
        """Marks whose audio has played by `now`, in the order they were received."""
        count = 0
        while count < len(self._marks) and self._marks[count].due_at <= now:
            count += 1
        due, self._marks = self._marks[:count], self._marks[count:]
        return due

    def next_mark_due(self) -> float | None:
        return self._marks[0].due_at if self._marks else None

    def clear(self, now: float) -> list[PendingMark]:
        """Stop playout at `now`; returns all pending marks, to be echoed at once."""
        for segment in reversed(self.segments):
            if segment.end <= now:
                break
            # Audio that had not started never plays: it becomes empty at the moment of clear.
            segment.start = min(segment.start, now)
            segment.cut_at = now
        self._busy_until = min(self._busy_until, now)
        pending, self._marks = self._marks, []
        return pending


def first_audible(segments: list[Segment], since: float, threshold: int) -> float | None:
    """When the first sample louder than `threshold` plays at or after `since`, if any."""
    for segment in segments:
        if segment.end <= since:
            continue
        skip = max(0, int(np.ceil((since - segment.start) * SAMPLE_RATE)))
        loud = np.flatnonzero(_loud(segment.played_audio[skip:], threshold))
        if loud.size:
            return segment.start + (skip + int(loud[0])) / SAMPLE_RATE
    return None


def last_audible(segments: list[Segment], until: float, threshold: int) -> float | None:
    """When the last sample louder than `threshold` that started playing by `until` ends
    (so possibly just after `until`), if any.

    Counting the sample playing at `until` keeps this consistent with `first_audible`, which
    reports a sample as heard from its start.
    """
    for segment in reversed(segments):
        if segment.start > until:
            continue
        started = int(np.floor((until - segment.start) * SAMPLE_RATE)) + 1
        stop = min(segment.played_samples, started)
        loud = np.flatnonzero(_loud(segment.played_audio[:stop], threshold))
        if loud.size:
            return segment.start + (int(loud[-1]) + 1) / SAMPLE_RATE
    return None


def _loud(audio: Pcm16, threshold: int) -> npt.NDArray[np.bool_]:
    # Two comparisons rather than abs(): abs(-32768) overflows int16.
    return (audio > threshold) | (audio < -threshold)
