"""What the caller says: audio -> VAD windows -> turn events -> STT segments -> caller turns.

`CallerSpeech` runs the inbound audio path of one call (VAD inline, the recognizer fed from
a queue) and keeps the caller's turn in progress. At a short pause the segment so far is
transcribed; when its text arrives during the pause the owner may prepare a reply
speculatively (`TurnOwner.transcript_ready`); when the endpoint is reached the owner confirms
the turn (`TurnOwner.turn_ended`) once every segment is transcribed. Speech after an endpoint
belongs to the same turn: it supersedes the pending confirmation (`CallerTurn.revision`).
The owner decides what speech means for the agent (barge-in) on the events `push` returns.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from voxline.agent_spec import TurnTaking
from voxline.audio.pcm import Pcm16
from voxline.runtime.listener import CallerAudio
from voxline.runtime.metrics import TurnTiming
from voxline.runtime.stt_channel import SttChannel
from voxline.runtime.turns import TurnDetector, TurnEnded, TurnEvent, TurnState


@dataclass(eq=False, slots=True)
class CallerTurn:
    """The caller's turn in progress: its transcribed segments and its timing."""

    finals: list[asyncio.Future[str]] = field(default_factory=list)
    timing: TurnTiming = field(default_factory=TurnTiming)
    revision: int = 0
    """Changes whenever the turn does after an endpoint (the caller went on, or a new
    endpoint was reached), so a confirmation can tell it is stale."""

    def revise(self) -> int:
        self.revision += 1
        return self.revision

    def transcribed(self) -> bool:
        return all(final.done() for final in self.finals)

    def text(self) -> str:
        parts = [
            final.result().strip()
            for final in self.finals
            if final.done() and not final.cancelled() and final.exception() is None
        ]
        return " ".join(part for part in parts if part)


class TurnOwner(Protocol):
    def transcript_ready(self, turn: CallerTurn, text: str) -> None:
        """The paused turn's text so far arrived before its endpoint (time to speculate)."""

    def turn_ended(self, turn: CallerTurn, revision: int) -> None:
        """The endpoint was reached: confirm `turn` once transcribed, unless its revision
        has moved on by then."""


class CallerSpeech:
    """One call's caller side; `stt` is the recognizer feed (`SttChannel.serve` runs it)."""

    def __init__(
        self,
        turn_taking: TurnTaking,
        audio: CallerAudio,
        *,
        pause_ms: float,
        stt_rate: int,
        owner: TurnOwner,
        clock: Callable[[], float],
    ) -> None:
        self.stt = SttChannel()
        self.detector = TurnDetector(turn_taking, window_ms=audio.window_ms, pause_ms=pause_ms)
        self.turn: CallerTurn | None = None
        self._audio = audio
        self._stt_rate = stt_rate
        self._owner = owner
        self._clock = clock
        self._last_voiced_at: float | None = None
        self._segment_start = 0
        """Where the open (or last) segment began in the recognizer's audio, in samples."""

    @property
    def idle(self) -> bool:
        """No turn in progress and no speech being heard."""
        return self.turn is None and self.detector.state is TurnState.SILENT

    @property
    def speaking(self) -> bool:
        """In a stretch of speech (short silences included, until a pause is detected)."""
        return self.detector.state is TurnState.SPEAKING

    @property
    def voiced(self) -> bool:
        """The last window was speech."""
        return self.detector.voiced

    def hear(self, pcm: Pcm16, mulaw: bytes | None) -> list[float]:
        """Take one frame of caller audio (sent on to the recognizer while a segment is open);
        the speech probability of each VAD window it completes, for `window`. Raises
        ValueError for audio that is not PCM16 at the transport's rate."""
        probabilities = self._audio.speech_probabilities(pcm, mulaw)
        segment = self._audio.segment_audio(pcm, mulaw)
        if segment is not None:
            self.stt.send(segment)
        return probabilities

    def window(self, probability: float, *, agent_speaking: bool) -> list[TurnEvent]:
        """Account one VAD window; the turn events it causes."""
        events = self.detector.push(probability, agent_speaking=agent_speaking)
        if self.detector.voiced and self.detector.state is TurnState.SPEAKING:
            self._last_voiced_at = self._clock()
        return events

    def start(self, voiced_ms: float) -> None:
        """Speech began: a new turn, or more of the turn whose endpoint was reached."""
        if self.turn is None:
            self.turn = CallerTurn()
        else:
            self.turn.revise()
        self.open_segment(voiced_ms)

    def open_segment(self, voiced_ms: float) -> None:
        """Start feeding the recognizer (the speech that confirmed the start included)."""
        self._segment_start = self.stt.samples_sent
        self.stt.send(self._audio.open_segment(voiced_ms))

    def transcribe(self) -> None:
        """End the open segment and ask for its text (speculatively, at a pause)."""
        turn = self.turn
        if turn is None or not self._audio.segment_open:
            return
        self.stt.send(self._audio.close_segment())
        final = self.stt.finalize()
        turn.finals.append(final)
        turn.timing.stt_start = self._clock()
        turn.timing.stt_done = None
        final.add_done_callback(functools.partial(self._on_final, turn))

    def end(self, *, at: float | None = None) -> None:
        """The endpoint was reached (`at`: the transcript's arrival, when that decided it)."""
        turn = self.turn
        if turn is None:
            return
        self.transcribe()
        turn.timing.speech_end = self._last_voiced_at
        turn.timing.endpoint = at if at is not None else self._clock()
        self._owner.turn_ended(turn, turn.revise())

    def utterance_end(self, at_s: float) -> bool:
        """The recognizer heard the utterance end `at_s` into its audio; True if that ended
        the turn (only during a pause, and never on a late cue about earlier audio)."""
        if self.turn is None or at_s * self._stt_rate < self._segment_start:
            return False
        if any(isinstance(event, TurnEnded) for event in self.detector.utterance_end()):
            self.end()
            return True
        return False

    def take(self, turn: CallerTurn) -> None:
        """The turn was confirmed: the next speech starts a new one."""
        if self.turn is turn:
            self.turn = None

    def discard(self) -> None:
        """Forget the turn in progress (its audio is transcribed and dropped)."""
        self.turn = None
        self.detector.reset()
        if self._audio.segment_open:
            self.stt.send(self._audio.close_segment())
            self.stt.finalize().add_done_callback(_ignore_result)

    def _on_final(self, turn: CallerTurn, final: asyncio.Future[str]) -> None:
        if final.cancelled() or final.exception() is not None or turn is not self.turn:
            return
        if not turn.transcribed():
            return
        turn.timing.stt_done = self._clock()
        if self.detector.state is not TurnState.PAUSED or self._audio.segment_open:
            return  # still speaking, or the turn already ended (its confirmation waits)
        text = turn.text()
        for event in self.detector.set_transcript(text):
            if isinstance(event, TurnEnded):
                self.end(at=turn.timing.stt_done)
                return
        if text:
            self._owner.transcript_ready(turn, text)


def _ignore_result(future: asyncio.Future[str]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved, so a failure here is not reported as unhandled
