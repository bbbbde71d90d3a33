"""Turn detection: caller speech start, pauses and end of turn from VAD probabilities.

A pure state machine (no clock, no I/O): time is counted in VAD windows. It moves between
three states, checked in one place:

    SILENT --voiced for the start threshold--> SPEAKING        (SpeechStarted)
    SPEAKING --silent for the pause threshold--> PAUSED        (PauseDetected)
    PAUSED --voiced for speech_start_ms--> SPEAKING            (SpeechResumed)
    PAUSED --silent for the endpoint--> SILENT                 (TurnEnded)
    PAUSED --the recognizer's utterance end--> SILENT          (TurnEnded, recognizer=True)

The start threshold is `speech_start_ms`, or `interruptions.min_speech_ms` while the agent
speaks (shorter speech is a backchannel; with interruptions disabled the caller cannot start
a turn over the agent at all). The endpoint comes from `endpointing.endpoint_ms` on the
transcript the runtime reports with `set_transcript` once the paused speech is transcribed.
A recognizer's utterance-end cue (`utterance_end`) is a second opinion: it ends the turn at
once, but only while our VAD already hears a pause, never over speech.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from voxline.agent_spec import TurnTaking
from voxline.runtime.endpointing import endpoint_ms

PAUSE_MS = 180
"""Silence after which the runtime transcribes (and may answer) speculatively."""
_HYSTERESIS = 0.15
"""A window stays voiced until its probability drops this far below the threshold."""


class TurnState(enum.Enum):
    SILENT = "silent"
    SPEAKING = "speaking"
    PAUSED = "paused"


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """Caller speech confirmed; `voiced_ms` of it came before this event."""

    voiced_ms: float


@dataclass(frozen=True, slots=True)
class SpeechResumed:
    """The caller spoke again after a pause in the same turn."""

    voiced_ms: float


@dataclass(frozen=True, slots=True)
class PauseDetected:
    """A short silence: time to transcribe what was said so far."""

    silence_ms: float


@dataclass(frozen=True, slots=True)
class TurnEnded:
    """The silence reached the endpoint: the caller's turn is over."""

    silence_ms: float
    endpoint_ms: int
    recognizer: bool = False
    """The recognizer's utterance end confirmed it before the silence reached the endpoint."""


TurnEvent = SpeechStarted | SpeechResumed | PauseDetected | TurnEnded


class TurnDetector:
    """Feed it every VAD window in order with `push`; act on the events it returns."""

    def __init__(
        self, turn_taking: TurnTaking, *, window_ms: float, pause_ms: float = PAUSE_MS
    ) -> None:
        if window_ms <= 0:
            raise ValueError(f"window_ms must be positive, got {window_ms}")
        self._tt = turn_taking
        self._window_ms = window_ms
        self._pause_ms = pause_ms
        self._on = turn_taking.vad_threshold
        self._off = max(turn_taking.vad_threshold - _HYSTERESIS, 0.01)
        self.state = TurnState.SILENT
        self.voiced = False
        """Whether the last window counted as speech."""
        self._run_ms = 0.0
        self._silence_ms = 0.0
        self._transcript: str | None = None

    @property
    def endpoint_ms(self) -> int:
        """The silence that ends the current turn, given its transcript so far."""
        return endpoint_ms(self._transcript, self._tt)

    def push(self, probability: float, *, agent_speaking: bool) -> list[TurnEvent]:
        """Account one VAD window; `agent_speaking` while agent audio is playing or due."""
        if probability >= self._on:
            self.voiced = True
        elif probability < self._off:
            self.voiced = False
        self._run_ms = self._run_ms + self._window_ms if self.voiced else 0.0
        if self.state is TurnState.SILENT:
            return self._silent(agent_speaking)
        if self.state is TurnState.SPEAKING:
            return self._speaking()
        return self._paused()

    def set_transcript(self, text: str) -> list[TurnEvent]:
        """Report the transcript of the turn so far (only meaningful while PAUSED); the new
        endpoint may end the turn at once."""
        if self.state is not TurnState.PAUSED:
            return []
        self._transcript = text
        return self._check_endpoint()

    def utterance_end(self) -> list[TurnEvent]:
        """The recognizer heard the utterance end: ends the turn if we are in a pause (and
        only then: over speech, or with nothing said, it changes nothing)."""
        if self.state is not TurnState.PAUSED:
            return []
        silence, endpoint = self._silence_ms, self.endpoint_ms
        self.reset()
        return [TurnEnded(silence, endpoint, recognizer=True)]

    def reset(self) -> None:
        """Back to SILENT, forgetting any speech in progress."""
        self.state = TurnState.SILENT
        self.voiced = False
        self._run_ms = 0.0
        self._silence_ms = 0.0
        self._transcript = None

    def _start_threshold_ms(self, agent_speaking: bool) -> float | None:
        if not agent_speaking:
            return self._tt.speech_start_ms
        if not self._tt.interruptions.enabled:
            return None
        return max(self._tt.interruptions.min_speech_ms, self._tt.speech_start_ms)

    def _silent(self, agent_speaking: bool) -> list[TurnEvent]:
        threshold = self._start_threshold_ms(agent_speaking)
        if threshold is None or self._run_ms < threshold:
            return []
        self.state = TurnState.SPEAKING
        self._silence_ms = 0.0
        self._transcript = None
        return [SpeechStarted(self._run_ms)]

    def _speaking(self) -> list[TurnEvent]:
        if self.voiced:
            self._silence_ms = 0.0
            return []
        self._silence_ms += self._window_ms
        if self._silence_ms < min(self._pause_ms, self.endpoint_ms):
            return []
        self.state = TurnState.PAUSED
        events: list[TurnEvent] = [PauseDetected(self._silence_ms)]
        events.extend(self._check_endpoint())
        return events

    def _paused(self) -> list[TurnEvent]:
        if self._run_ms >= self._tt.speech_start_ms:
            self.state = TurnState.SPEAKING
            self._silence_ms = 0.0
            self._transcript = None
            return [SpeechResumed(self._run_ms)]
        # Voiced windows too short to count as speech are part of the pause.
        self._silence_ms += self._window_ms
        return self._check_endpoint()

    def _check_endpoint(self) -> list[TurnEvent]:
        endpoint = self.endpoint_ms
        if self._silence_ms < endpoint:
            return []
        silence = self._silence_ms
        self.reset()
        return [TurnEnded(silence, endpoint)]
