"""The retry policy: after an attempt ends, does the task call again, and when?"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from voxline.dispatch.windows import CallingWindow
from voxline.store.task_state import AttemptStatus

RETRYABLE = frozenset(
    {AttemptStatus.BUSY, AttemptStatus.NO_ANSWER, AttemptStatus.FAILED, AttemptStatus.VOICEMAIL}
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    on: frozenset[AttemptStatus]
    backoff_seconds: int

    def next_attempt_at(
        self,
        outcome: AttemptStatus,
        attempts_made: int,
        ended_at: datetime,
        window: CallingWindow | None,
    ) -> datetime | None:
        """When to call again after an attempt ended with `outcome`, or None: the task ends."""
        if outcome not in self.on or outcome not in RETRYABLE:
            return None
        if attempts_made >= self.max_attempts:
            return None
        due = ended_at + timedelta(seconds=self.backoff_seconds)
        return window.next_opening(due) if window is not None else due
