from __future__ import annotations

import itertools

import pytest

from voxline.store.task_state import (
    AttemptStatus,
    IllegalTaskTransition,
    TaskStatus,
    check_attempt_transition,
    check_task_transition,
    is_forward,
)

FINAL = [
    TaskStatus.COMPLETED,
    TaskStatus.BUSY,
    TaskStatus.NO_ANSWER,
    TaskStatus.FAILED,
    TaskStatus.VOICEMAIL,
    TaskStatus.CANCELED,
]


def test_the_happy_path_is_allowed() -> None:
    path = [
        TaskStatus.WAITING,
        TaskStatus.DIALING,
        TaskStatus.RINGING,
        TaskStatus.IN_PROGRESS,
        TaskStatus.COMPLETED,
    ]
    for current, target in itertools.pairwise(path):
        check_task_transition("task_x", current, target)


def test_a_retry_goes_back_to_waiting() -> None:
    check_task_transition("task_x", TaskStatus.RINGING, TaskStatus.WAITING)
    check_task_transition("task_x", TaskStatus.WAITING, TaskStatus.DIALING)


@pytest.mark.parametrize("final", FINAL)
def test_final_statuses_are_final(final: TaskStatus) -> None:
    assert final.is_terminal
    for target in TaskStatus:
        with pytest.raises(IllegalTaskTransition, match="it is final"):
            check_task_transition("task_x", final, target)


def test_a_waiting_task_cannot_ring_without_dialing() -> None:
    with pytest.raises(IllegalTaskTransition, match="may go to canceled, dialing, failed"):
        check_task_transition("task_x", TaskStatus.WAITING, TaskStatus.RINGING)


def test_an_attempt_never_goes_back() -> None:
    with pytest.raises(IllegalTaskTransition):
        check_attempt_transition("attempt", AttemptStatus.IN_PROGRESS, AttemptStatus.RINGING)
    with pytest.raises(IllegalTaskTransition):
        check_attempt_transition("attempt", AttemptStatus.COMPLETED, AttemptStatus.IN_PROGRESS)


def test_late_ringing_is_not_forward() -> None:
    assert not is_forward(AttemptStatus.IN_PROGRESS, AttemptStatus.RINGING)
    assert not is_forward(AttemptStatus.RINGING, AttemptStatus.RINGING)
    assert not is_forward(AttemptStatus.COMPLETED, AttemptStatus.RINGING)
    assert not is_forward(AttemptStatus.BUSY, AttemptStatus.COMPLETED)


def test_progress_and_endings_are_forward() -> None:
    assert is_forward(AttemptStatus.DIALING, AttemptStatus.RINGING)
    assert is_forward(AttemptStatus.DIALING, AttemptStatus.IN_PROGRESS)
    assert is_forward(AttemptStatus.RINGING, AttemptStatus.NO_ANSWER)
    assert is_forward(AttemptStatus.IN_PROGRESS, AttemptStatus.COMPLETED)
