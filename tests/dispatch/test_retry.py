from __future__ import annotations

from datetime import UTC, datetime, timedelta

from voxline.dispatch.retry import RetryPolicy
from voxline.dispatch.windows import CallingWindow
from voxline.store.task_state import AttemptStatus

ENDED = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
POLICY = RetryPolicy(
    max_attempts=3,
    on=frozenset({AttemptStatus.BUSY, AttemptStatus.NO_ANSWER}),
    backoff_seconds=120,
)


def test_a_listed_outcome_retries_after_the_backoff() -> None:
    due = POLICY.next_attempt_at(AttemptStatus.BUSY, 1, ENDED, None)
    assert due == ENDED + timedelta(seconds=120)


def test_an_unlisted_outcome_ends_the_task() -> None:
    assert POLICY.next_attempt_at(AttemptStatus.FAILED, 1, ENDED, None) is None


def test_a_completed_call_never_retries() -> None:
    policy = RetryPolicy(3, frozenset(AttemptStatus), 0)
    assert policy.next_attempt_at(AttemptStatus.COMPLETED, 1, ENDED, None) is None
    assert policy.next_attempt_at(AttemptStatus.CANCELED, 1, ENDED, None) is None


def test_attempts_run_out() -> None:
    assert POLICY.next_attempt_at(AttemptStatus.NO_ANSWER, 2, ENDED, None) is not None
    assert POLICY.next_attempt_at(AttemptStatus.NO_ANSWER, 3, ENDED, None) is None


def test_a_retry_waits_for_the_calling_window() -> None:
    window = CallingWindow.parse("America/New_York", ["wed", "thu"], "09:00", "10:05")
    # Backoff lands at 10:02 EST, inside; 10 minutes would land after 10:05: next day 09:00.
    assert POLICY.next_attempt_at(AttemptStatus.BUSY, 1, ENDED, window) == ENDED + timedelta(
        seconds=120
    )
    late = RetryPolicy(3, POLICY.on, 600)
    assert late.next_attempt_at(AttemptStatus.BUSY, 1, ENDED, window) == datetime(
        2026, 3, 5, 14, 0, tzinfo=UTC
    )
