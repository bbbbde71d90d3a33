"""An outbound task's and its attempts' lifecycles: the only place their statuses change.

Task:
    waiting --> dialing --> ringing --> in_progress --> completed | voicemail | failed
       ^           |           |             |
       +-----------+-----------+-------------+  (retry after a busy, no-answer, ... attempt)
    any live status --> completed | busy | no_answer | failed | voicemail | canceled

An attempt (one call) goes dialing --> ringing --> in_progress --> a final status, and never
back: Twilio's callbacks arrive late and out of order, so `is_forward` tells a real step from
a stale one (a late `ringing` after `in-progress`), which callers ignore instead of refusing.
"""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    WAITING = "waiting"
    DIALING = "dialing"
    RINGING = "ringing"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    VOICEMAIL = "voicemail"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        return not _TASK_ALLOWED[self]

    @property
    def is_live(self) -> bool:
        """A call exists (or is being placed) for the task."""
        return self in LIVE


class AttemptStatus(StrEnum):
    DIALING = "dialing"
    RINGING = "ringing"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    VOICEMAIL = "voicemail"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        return not _ATTEMPT_ALLOWED[self]


LIVE = frozenset({TaskStatus.DIALING, TaskStatus.RINGING, TaskStatus.IN_PROGRESS})
_LIVE_ATTEMPT = (AttemptStatus.DIALING, AttemptStatus.RINGING, AttemptStatus.IN_PROGRESS)
ATTEMPT_LIVE_VALUES: tuple[str, ...] = tuple(status.value for status in _LIVE_ATTEMPT)
_FINAL = frozenset(
    {
        TaskStatus.COMPLETED,
        TaskStatus.BUSY,
        TaskStatus.NO_ANSWER,
        TaskStatus.FAILED,
        TaskStatus.VOICEMAIL,
        TaskStatus.CANCELED,
    }
)
_RANK = {AttemptStatus.DIALING: 0, AttemptStatus.RINGING: 1, AttemptStatus.IN_PROGRESS: 2}

_TASK_ALLOWED: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.WAITING: frozenset({TaskStatus.DIALING, TaskStatus.CANCELED, TaskStatus.FAILED}),
    TaskStatus.DIALING: frozenset({TaskStatus.WAITING, TaskStatus.RINGING, TaskStatus.IN_PROGRESS})
    | _FINAL,
    TaskStatus.RINGING: frozenset({TaskStatus.WAITING, TaskStatus.IN_PROGRESS}) | _FINAL,
    TaskStatus.IN_PROGRESS: frozenset({TaskStatus.WAITING}) | _FINAL,
    **{status: frozenset() for status in _FINAL},
}
_ATTEMPT_FINAL = frozenset(AttemptStatus) - set(_LIVE_ATTEMPT)
_ATTEMPT_ALLOWED: dict[AttemptStatus, frozenset[AttemptStatus]] = {
    AttemptStatus.DIALING: frozenset({AttemptStatus.RINGING, AttemptStatus.IN_PROGRESS})
    | _ATTEMPT_FINAL,
    AttemptStatus.RINGING: frozenset({AttemptStatus.IN_PROGRESS}) | _ATTEMPT_FINAL,
    AttemptStatus.IN_PROGRESS: _ATTEMPT_FINAL,
    **{status: frozenset() for status in _ATTEMPT_FINAL},
}


class IllegalTaskTransition(ValueError):
    """A status change the task or attempt lifecycle does not allow."""

    def __init__(self, what: str, current: str, target: str, allowed: frozenset[str]) -> None:
        listed = ", ".join(sorted(allowed)) or "nothing: it is final"
        super().__init__(
            f"{what} cannot go from {current} to {target} (from {current} it may go to {listed})"
        )
        self.current = current
        self.target = target


def check_task_transition(task_id: str, current: TaskStatus, target: TaskStatus) -> None:
    """Raise `IllegalTaskTransition` unless `current -> target` is allowed for a task."""
    allowed = _TASK_ALLOWED[current]
    if target not in allowed:
        raise IllegalTaskTransition(f"task {task_id!r}", current, target, allowed)


def check_attempt_transition(what: str, current: AttemptStatus, target: AttemptStatus) -> None:
    """Raise `IllegalTaskTransition` unless `current -> target` is allowed for an attempt."""
    allowed = _ATTEMPT_ALLOWED[current]
    if target not in allowed:
        raise IllegalTaskTransition(what, current, target, allowed)


def is_forward(current: AttemptStatus, target: AttemptStatus) -> bool:
    """Whether `target` moves an attempt on (True) or is a stale, late report (False).

    Final statuses are always forward from a live one and never from a final one; among live
    statuses only a higher one is (dialing < ringing < in_progress)."""
    if current.is_terminal:
        return False
    if target.is_terminal:
        return True
    return _RANK[target] > _RANK[current]


def task_status_of(attempt: AttemptStatus) -> TaskStatus:
    """The task status that mirrors a live attempt (or names a final one)."""
    return TaskStatus(attempt.value)
