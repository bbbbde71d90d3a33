from __future__ import annotations

import pytest

from voxline.store.session_state import IllegalTransition, SessionStatus, check_transition

S = SessionStatus


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.PENDING, S.IN_PROGRESS),
        (S.PENDING, S.FAILED),
        (S.IN_PROGRESS, S.COMPLETED),
        (S.IN_PROGRESS, S.FAILED),
    ],
)
def test_allowed_transitions_pass(current: SessionStatus, target: SessionStatus) -> None:
    check_transition("sess_x", current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.PENDING, S.COMPLETED),
        (S.PENDING, S.PENDING),
        (S.IN_PROGRESS, S.PENDING),
        (S.COMPLETED, S.FAILED),
        (S.FAILED, S.COMPLETED),
        (S.COMPLETED, S.IN_PROGRESS),
    ],
)
def test_illegal_transitions_raise(current: SessionStatus, target: SessionStatus) -> None:
    with pytest.raises(IllegalTransition):
        check_transition("sess_x", current, target)


def test_illegal_transition_message_names_session_states_and_options() -> None:
    with pytest.raises(IllegalTransition) as caught:
        check_transition("sess_abc", S.PENDING, S.COMPLETED)
    message = str(caught.value)
    assert "sess_abc" in message
    assert "pending" in message and "completed" in message
    assert "failed, in_progress" in message


def test_only_completed_and_failed_are_terminal() -> None:
    assert {status for status in S if status.is_terminal} == {S.COMPLETED, S.FAILED}
