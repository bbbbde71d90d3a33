from __future__ import annotations

from datetime import UTC, datetime

import pytest

from voxline.dispatch.windows import CallingWindow

NY_WEEKDAYS = CallingWindow.parse(
    "America/New_York", ["mon", "tue", "wed", "thu", "fri"], "09:00", "17:00"
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_open_window_returns_the_time_itself() -> None:
    at = utc(2026, 3, 4, 15, 0)  # Wednesday 10:00 EST
    assert NY_WEEKDAYS.next_opening(at) == at


def test_before_opening_waits_for_the_local_start() -> None:
    assert NY_WEEKDAYS.next_opening(utc(2026, 3, 4, 12, 0)) == utc(2026, 3, 4, 14, 0)


def test_friday_evening_waits_for_monday() -> None:
    assert NY_WEEKDAYS.next_opening(utc(2026, 3, 6, 23, 0)) == utc(2026, 3, 9, 13, 0)


def test_spring_forward_moves_the_opening_by_one_hour_in_utc() -> None:
    # DST starts Sunday 2026-03-08: 09:00 is 14:00 UTC before, 13:00 UTC after.
    assert NY_WEEKDAYS.next_opening(utc(2026, 3, 6, 22, 30)) == utc(2026, 3, 9, 13, 0)
    assert NY_WEEKDAYS.next_opening(utc(2026, 3, 5, 22, 30)) == utc(2026, 3, 6, 14, 0)


def test_fall_back_moves_it_back() -> None:
    # DST ends Sunday 2026-11-01: 09:00 EDT is 13:00 UTC, 09:00 EST is 14:00 UTC.
    assert NY_WEEKDAYS.next_opening(utc(2026, 10, 30, 22, 0)) == utc(2026, 11, 2, 14, 0)


def test_a_skipped_local_time_opens_after_the_gap() -> None:
    window = CallingWindow.parse("America/New_York", ["sun"], "02:30", "04:00")
    # 02:30 does not exist on 2026-03-08; it is read as 02:30 EST = 07:30 UTC (03:30 EDT).
    assert window.next_opening(utc(2026, 3, 8, 5, 0)) == utc(2026, 3, 8, 7, 30)


def test_window_across_midnight_is_open_after_midnight() -> None:
    night = CallingWindow.parse("Europe/Paris", ["fri"], "22:00", "02:00")
    # Saturday 01:00 in Paris (Friday 23:00 UTC) still belongs to Friday's window.
    at = utc(2026, 6, 5, 23, 0)
    assert night.next_opening(at) == at
    # Saturday 03:00 Paris: closed; next Friday 22:00 Paris (20:00 UTC).
    assert night.next_opening(utc(2026, 6, 6, 1, 0)) == utc(2026, 6, 12, 20, 0)


def test_window_closes_at_its_end() -> None:
    assert NY_WEEKDAYS.next_opening(utc(2026, 3, 4, 22, 0)) == utc(2026, 3, 5, 14, 0)


@pytest.mark.parametrize(
    ("timezone", "days", "start", "end"),
    [
        ("Mars/Olympus", ["mon"], "09:00", "17:00"),
        ("UTC", ["monday"], "09:00", "17:00"),
        ("UTC", [], "09:00", "17:00"),
        ("UTC", ["mon"], "9:00", "17:00"),
        ("UTC", ["mon"], "25:00", "17:00"),
        ("UTC", ["mon"], "09:00", "09:00"),
    ],
)
def test_invalid_windows_are_refused(timezone: str, days: list[str], start: str, end: str) -> None:
    with pytest.raises(ValueError):
        CallingWindow.parse(timezone, days, start, end)


def test_json_round_trip() -> None:
    assert CallingWindow.from_json(NY_WEEKDAYS.to_json()) == NY_WEEKDAYS
