"""A call's phase and how it ends: one small state machine, checked in one place.

    OPENING --greeting begun, providers connecting--> TALKING
    OPENING | TALKING --a goodbye or hand-over begins--> CLOSING
    CLOSING --the hand-over failed--> TALKING
    any but ENDED --the call is over--> ENDED

While CLOSING the agent is saying goodbye (or transferring): caller input changes nothing.
How the call ends is decided once (`decide`, the first reason wins) and may be decided before
the call is over, so that the far end's own hang-up that follows ours is not taken for the
caller's.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from typing import Literal

EndReason = Literal[
    "caller_hangup",
    "agent_hangup",
    "transferred",
    "idle_timeout",
    "max_duration",
    "error",
    "server_shutdown",
    "voicemail",
    "machine_detected",
    "operator_hangup",
]


class CallPhase(enum.Enum):
    OPENING = "opening"
    TALKING = "talking"
    CLOSING = "closing"
    ENDED = "ended"


_ALLOWED: dict[CallPhase, frozenset[CallPhase]] = {
    CallPhase.OPENING: frozenset({CallPhase.TALKING, CallPhase.CLOSING, CallPhase.ENDED}),
    CallPhase.TALKING: frozenset({CallPhase.CLOSING, CallPhase.ENDED}),
    CallPhase.CLOSING: frozenset({CallPhase.TALKING, CallPhase.ENDED}),
    CallPhase.ENDED: frozenset(),
}


class IllegalPhaseChange(RuntimeError):
    def __init__(self, current: CallPhase, target: CallPhase) -> None:
        allowed = ", ".join(sorted(p.value for p in _ALLOWED[current])) or "nothing"
        super().__init__(
            f"a call cannot go from {current.value} to {target.value} "
            f"(from {current.value} it may go to {allowed})"
        )


@dataclass(frozen=True, slots=True)
class CallEnd:
    reason: EndReason
    error: str | None = None


class CallLifecycle:
    """The call's phase and its end. `finished` is set once the call is over."""

    def __init__(self) -> None:
        self.phase = CallPhase.OPENING
        self.end: CallEnd | None = None
        self.finished = asyncio.Event()

    @property
    def closing(self) -> bool:
        """Caller input changes nothing now (goodbye, hand-over, or over)."""
        return self.phase in (CallPhase.CLOSING, CallPhase.ENDED)

    @property
    def over(self) -> bool:
        return self.phase is CallPhase.ENDED

    def opened(self) -> None:
        """The greeting is under way and the providers are connecting: converse (unless the
        call is already closing)."""
        if self.phase is CallPhase.OPENING:
            self._move(CallPhase.TALKING)

    def close(self) -> None:
        """The agent says goodbye or hands the call over: ignore the caller from now on."""
        if self.phase in (CallPhase.OPENING, CallPhase.TALKING):
            self._move(CallPhase.CLOSING)

    def reopen(self) -> None:
        """A hand-over that was closing the call failed: converse again."""
        if self.phase is CallPhase.CLOSING:
            self._move(CallPhase.TALKING)

    def decide(self, reason: EndReason, error: str | None = None) -> bool:
        """Decide how the call ends, unless already decided; True if this decided it."""
        if self.end is not None:
            return False
        self.end = CallEnd(reason, error)
        return True

    def undecide(self) -> None:
        """Forget the decision (a transfer that was decided on failed)."""
        if not self.over:
            self.end = None

    def finish(self, reason: EndReason, error: str | None = None) -> None:
        """The call is over now (`reason` counts unless another was decided first)."""
        self.decide(reason, error)
        if not self.over:
            self._move(CallPhase.ENDED)
        self.finished.set()

    def _move(self, target: CallPhase) -> None:
        if target not in _ALLOWED[self.phase]:
            raise IllegalPhaseChange(self.phase, target)
        self.phase = target
