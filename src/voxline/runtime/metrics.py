"""Per-turn latency accounting along the critical path.

Turn latency runs from the end of the caller's speech (the last voiced frame received) to
the first agent audio sent. Speculation starts STT, LLM and TTS before the turn is
confirmed, so the parts overlap; each part reports only the time it added to the critical
path, in this order:

    end_of_turn_wait   last voiced frame -> the turn was confirmed, minus the STT part
    stt                the part of the final transcription the confirmation waited for:
                       all of it when the endpoint waited for the text, 0 when the text
                       came before the silence reached the endpoint
    llm_first_token    LLM request (or confirmation, if later) -> first text or tool call
    first_clause       first token (or confirmation, if later) -> first speakable clause
    tts_first_byte     clause to TTS (or confirmation, if later) -> its first audio

Each later part counts from whichever is later: its own start or the end of the parts
before it (0 when it finished in their shadow). overhead = turn latency - the sum of the
parts: the gate hand-off, resampling, pacing and scheduling, i.e. voxline's own cost.
"""

from __future__ import annotations

from dataclasses import dataclass

from voxline.runtime.recording import TurnMetrics


@dataclass(slots=True)
class TurnTiming:
    """Clock readings (seconds) of one caller turn and the response to it; None if unseen."""

    speech_end: float | None = None
    endpoint: float | None = None
    stt_start: float | None = None
    stt_done: float | None = None
    llm_start: float | None = None
    llm_first_token: float | None = None
    first_clause: float | None = None
    tts_start: float | None = None
    tts_first_byte: float | None = None
    first_audio: float | None = None

    def adopt_caller(self, caller: TurnTiming) -> None:
        """Take the caller-side readings of `caller` (a speculative reply promoted to answer
        that caller turn keeps its own LLM and TTS readings)."""
        self.speech_end = caller.speech_end
        self.endpoint = caller.endpoint
        self.stt_start = caller.stt_start
        self.stt_done = caller.stt_done


def turn_metrics(turn: int, timing: TurnTiming, *, interrupted: bool) -> TurnMetrics:
    """The turn's metrics in milliseconds, each part clipped to the critical path."""
    metrics = TurnMetrics(turn=turn, interrupted=interrupted)
    origin = timing.speech_end
    if origin is None or timing.endpoint is None:
        return metrics
    confirmed = timing.endpoint
    waited = confirmed - origin
    transcribing = 0.0
    if timing.stt_start is not None and timing.stt_done is not None:
        if timing.stt_done >= timing.endpoint:
            # The confirmation waited for the text: STT is on the critical path.
            confirmed = timing.stt_done
            asked = min(max(timing.stt_start, origin), confirmed)
            waited = asked - origin
            transcribing = confirmed - asked
        metrics.stt_ms = transcribing * 1000
    metrics.end_of_turn_wait_ms = waited * 1000
    frontier = confirmed
    parts = [waited, transcribing]

    def part(started: float | None, done: float | None) -> float | None:
        nonlocal frontier
        if started is None or done is None:
            return None
        added = max(0.0, done - max(started, frontier))
        frontier = max(frontier, done)
        parts.append(added)
        return added * 1000

    metrics.llm_first_token_ms = part(timing.llm_start, timing.llm_first_token)
    metrics.first_clause_ms = part(timing.llm_first_token, timing.first_clause)
    metrics.tts_first_byte_ms = part(timing.tts_start, timing.tts_first_byte)
    if timing.first_audio is not None:
        latency = timing.first_audio - origin
        metrics.turn_latency_ms = latency * 1000
        metrics.overhead_ms = max(0.0, latency - sum(parts)) * 1000
    return metrics
