"""A session's lifecycle as one small state machine: the only place statuses change.

pending --> in_progress --> completed
   |             |
   +-------------+--------> failed
"""

from __future__ import annotations

from enum import StrEnum


class SessionStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return not _ALLOWED[self]


class Channel(StrEnum):
    PHONE = "phone"
    WEB = "web"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


_ALLOWED: dict[SessionStatus, frozenset[SessionStatus]] = {
    SessionStatus.PENDING: frozenset({SessionStatus.IN_PROGRESS, SessionStatus.FAILED}),
    SessionStatus.IN_PROGRESS: frozenset({SessionStatus.COMPLETED, SessionStatus.FAILED}),
    SessionStatus.COMPLETED: frozenset(),
    SessionStatus.FAILED: frozenset(),
}


class IllegalTransition(ValueError):
    """A status change the lifecycle does not allow (e.g. finishing a session twice)."""

    def __init__(self, session_id: str, current: SessionStatus, target: SessionStatus) -> None:
        allowed = ", ".join(sorted(_ALLOWED[current])) or "nothing: it is final"
        super().__init__(
            f"session {session_id!r} cannot go from {current} to {target} "
            f"(from {current} it may go to {allowed})"
        )
        self.session_id = session_id
        self.current = current
        self.target = target


def check_transition(session_id: str, current: SessionStatus, target: SessionStatus) -> None:
    """Raise `IllegalTransition` unless `current -> target` is allowed."""
    if target not in _ALLOWED[current]:
        raise IllegalTransition(session_id, current, target)
