"""A scripted caller: listens to the greeting, then says each line and listens to the answer.

An answer is over once the agent has been silent for `silence_ms` (as played, so what the
caller heard). With `barge_in_after_s` the caller does not wait for the end: it says its
next line that long after the answer became audible, talking over the agent.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from voxline.audio.pcm import Pcm16
from voxline.simulator.twilio_peer import CallEnded, SimulatedTwilioCall

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CallerLine:
    """One caller turn: its text (for reports) and its audio (mono PCM16, 8 kHz)."""

    text: str
    pcm: Pcm16


@dataclass(frozen=True, slots=True)
class ListeningPolicy:
    """How the caller waits for the agent. Times in seconds unless named `_ms`."""

    silence_ms: float = 800.0
    """Agent silence that ends its answer."""
    greeting_timeout_s: float = 5.0
    """How long to wait for a greeting before speaking anyway (an agent may have none)."""
    answer_timeout_s: float = 20.0
    """How long to wait for an answer to start before going on with the next line."""
    max_answer_s: float = 120.0
    """The longest answer listened to before going on regardless."""
    barge_in_after_s: float | None = None

    def __post_init__(self) -> None:
        for name in ("silence_ms", "greeting_timeout_s", "answer_timeout_s", "max_answer_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.barge_in_after_s is not None and self.barge_in_after_s < 0:
            raise ValueError("barge_in_after_s must not be negative")


@dataclass(frozen=True, slots=True)
class ConversationOutcome:
    """How far the script got: lines fully said, and who ended the call."""

    lines_said: int
    unanswered: tuple[int, ...]
    """Indexes of the lines the agent did not answer within `answer_timeout_s`."""
    ended_by: Literal["caller", "agent"]


async def converse(
    call: SimulatedTwilioCall, lines: Sequence[CallerLine], policy: ListeningPolicy
) -> ConversationOutcome:
    """Hold the caller's side of the conversation on a started call, then hang up.

    Returns early (`ended_by="agent"`) when the server ends the stream.
    """
    said = 0
    unanswered: list[int] = []
    try:
        await _listen(call, 0.0, policy.greeting_timeout_s, policy, barge=bool(lines))
        for index, line in enumerate(lines):
            utterance = await call.speak(line.pcm)
            said += 1
            assert utterance.ended_at is not None
            barge = index + 1 < len(lines)
            answered = await _listen(
                call, utterance.ended_at, policy.answer_timeout_s, policy, barge=barge
            )
            if not answered:
                unanswered.append(index)
    except CallEnded:
        return ConversationOutcome(said, tuple(unanswered), ended_by="agent")
    ended_by: Literal["caller", "agent"] = "agent" if call.closed_at is not None else "caller"
    await call.hang_up()
    return ConversationOutcome(said, tuple(unanswered), ended_by=ended_by)


async def _listen(
    call: SimulatedTwilioCall,
    since: float,
    start_within: float,
    policy: ListeningPolicy,
    *,
    barge: bool,
) -> bool:
    """Wait for the agent to speak after `since` and to finish (or for the moment to barge
    in); False when it did not start within `start_within` seconds."""
    try:
        heard = await call.wait_for_agent_audio(start_within, since=since)
    except TimeoutError:
        logger.info("no agent audio within %.1f s of %.2f s", start_within, since)
        return False
    limit = policy.max_answer_s
    if barge and policy.barge_in_after_s is not None:
        limit = max(0.0, heard + policy.barge_in_after_s - call.now())
    # A timeout means it is time to talk over the agent (or that it talked for too long).
    with contextlib.suppress(TimeoutError):
        await call.wait_until_agent_silent(policy.silence_ms, timeout=limit)
    return True
