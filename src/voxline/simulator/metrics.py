"""What a simulated caller measured: turn latencies, playout gaps, and the call's audio.

All times are seconds since the simulated Twilio sent `start`. "Agent audio" means agent
samples louder than a threshold that actually played (cleared audio never counts).
"""

from __future__ import annotations

import asyncio
import itertools
import wave
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voxline.audio.pcm import Pcm16
from voxline.simulator.playout import SAMPLE_RATE, Segment, first_audible, last_audible

# Agent audio within this long before the caller stopped means they were talking over it.
OVERLAP_WINDOW = 0.1


@dataclass(slots=True)
class CallerUtterance:
    """Caller audio queued with one `say()`; times are set as its frames go out."""

    samples: int
    queued_at: float
    started_at: float | None = None
    ended_at: float | None = None
    _sent: asyncio.Event = field(default_factory=asyncio.Event, repr=False, compare=False)

    @property
    def duration(self) -> float:
        return self.samples / SAMPLE_RATE

    async def wait_sent(self) -> None:
        """Return once the last frame of this utterance has been sent."""
        await self._sent.wait()

    def mark_started(self, at: float) -> None:
        self.started_at = at

    def mark_ended(self, at: float) -> None:
        self.ended_at = at
        self._sent.set()


@dataclass(frozen=True, slots=True)
class Turn:
    """One caller utterance and the agent's answer to it.

    `latency` runs from the end of the caller's audio to the first agent audio heard after it
    (before the caller spoke again); None when the agent did not answer. `overlapped` says the
    agent was still audible as the caller stopped, which makes `latency` meaningless.
    """

    utterance: CallerUtterance
    agent_audio_at: float | None
    latency: float | None
    overlapped: bool


@dataclass(frozen=True, slots=True)
class Gap:
    """Silence inside agent speech: the playout buffer ran dry (an underrun)."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def turns(
    utterances: Sequence[CallerUtterance], segments: list[Segment], threshold: int
) -> list[Turn]:
    """The turn of every utterance that has been sent completely."""
    result: list[Turn] = []
    for index, utterance in enumerate(utterances):
        if utterance.ended_at is None:
            continue
        end = utterance.ended_at
        answer = first_audible(segments, end, threshold)
        following = utterances[index + 1].started_at if index + 1 < len(utterances) else None
        if answer is not None and following is not None and answer >= following:
            answer = None
        last = last_audible(segments, end, threshold)
        result.append(
            Turn(
                utterance=utterance,
                agent_audio_at=answer,
                latency=None if answer is None else answer - end,
                overlapped=last is not None and last >= end - OVERLAP_WINDOW,
            )
        )
    return result


def playout_gaps(
    segments: list[Segment],
    utterances: Sequence[CallerUtterance],
    clears: Sequence[float],
    min_gap: float,
) -> list[Gap]:
    """Gaps longer than `min_gap` between agent audio chunks that belong to one answer.

    Two chunks belong to one answer unless the caller started or finished an utterance, or
    the server sent `clear`, between their arrivals (an agent may answer before the caller
    has finished, when it took a pause for the end of the turn).
    """
    played = [segment for segment in segments if segment.played_samples > 0]
    spoken = [t for u in utterances for t in (u.started_at, u.ended_at) if t is not None]
    boundaries = sorted(spoken + list(clears))
    gaps: list[Gap] = []
    for previous, current in itertools.pairwise(played):
        if current.start - previous.end <= min_gap:
            continue
        if any(previous.received_at <= t <= current.received_at for t in boundaries):
            continue
        gaps.append(Gap(start=previous.end, end=current.start))
    return gaps


def agent_track(segments: list[Segment]) -> Pcm16:
    """The agent audio the caller heard, placed at the time it played (silence elsewhere)."""
    played = [segment for segment in segments if segment.played_samples > 0]
    length = max((round(segment.end * SAMPLE_RATE) for segment in played), default=0)
    track = np.zeros(max(length, 0), dtype=np.int16)
    for segment in played:
        begin = max(0, round(segment.start * SAMPLE_RATE))
        audio = segment.played_audio[: max(0, len(track) - begin)]
        track[begin : begin + len(audio)] = audio
    return track


def write_stereo_wav(path: Path, left: Pcm16, right: Pcm16) -> None:
    """A 16-bit 8 kHz stereo WAV: `left` and `right` padded with silence to one length."""
    frames = np.zeros((max(len(left), len(right)), 2), dtype="<i2")
    frames[: len(left), 0] = left
    frames[: len(right), 1] = right
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(frames.tobytes())
