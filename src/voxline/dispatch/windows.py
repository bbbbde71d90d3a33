"""Calling windows: when a task may ring, in the callee's time zone.

A window opens on each listed weekday at `start` (local time) and closes at `end`; when `end`
is not after `start` it closes the next day (22:00-06:00 is a night window that opened on the
listed day). Local times that a DST change skips are read with the offset before the change,
so 02:30 on a spring-forward day opens at 03:30; a repeated hour counts from its first pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SEARCH_DAYS = 8


@dataclass(frozen=True, slots=True)
class CallingWindow:
    timezone: str
    days: tuple[str, ...]
    start: time
    end: time

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {self.timezone!r}") from exc
        unknown = [day for day in self.days if day not in DAYS]
        if unknown or not self.days:
            raise ValueError(f"days are a non-empty subset of {', '.join(DAYS)}")
        if self.start == self.end:
            raise ValueError("a calling window's start and end must differ")

    @classmethod
    def parse(cls, timezone: str, days: Sequence[str], start: str, end: str) -> CallingWindow:
        """From the API's strings (`HH:MM`); ValueError naming what is wrong."""
        return cls(timezone, tuple(days), _hhmm(start, "start"), _hhmm(end, "end"))

    def to_json(self) -> dict[str, Any]:
        return {
            "timezone": self.timezone,
            "days": list(self.days),
            "start": self.start.strftime("%H:%M"),
            "end": self.end.strftime("%H:%M"),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CallingWindow:
        return cls.parse(data["timezone"], data["days"], data["start"], data["end"])

    def next_opening(self, at: datetime) -> datetime:
        """`at` itself when the window is open then, else the next time it opens (UTC)."""
        zone = ZoneInfo(self.timezone)
        today = at.astimezone(zone).date()
        best: datetime | None = None
        for offset in range(-1, _SEARCH_DAYS):
            day = today + timedelta(days=offset)
            if DAYS[day.weekday()] not in self.days:
                continue
            opens, closes = self._span(day, zone)
            if opens <= at < closes:
                return at
            if opens > at and (best is None or opens < best):
                best = opens
        assert best is not None  # some listed day opens within any 8 days
        return best

    def _span(self, day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
        end_day = day if self.end > self.start else day + timedelta(days=1)
        opens = datetime.combine(day, self.start, tzinfo=zone).astimezone(UTC)
        closes = datetime.combine(end_day, self.end, tzinfo=zone).astimezone(UTC)
        return opens, closes


def _hhmm(value: str, field: str) -> time:
    try:
        parsed = datetime.strptime(value, "%H:%M").time()
    except ValueError:
        raise ValueError(f"{field} must be HH:MM (24-hour), got {value!r}") from None
    if len(value) != 5:
        raise ValueError(f"{field} must be HH:MM (24-hour), got {value!r}")
    return parsed
