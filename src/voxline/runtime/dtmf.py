"""Keypad digits gathered into one caller input: complete on '#' or after a pause."""

from __future__ import annotations

DTMF_DIGITS = frozenset("0123456789*#ABCD")
DIGIT_TIMEOUT_S = 1.5
"""The input is complete this long after the last digit."""
MAX_DIGITS = 64


class DtmfCollector:
    """`add` each digit; it returns the finished sequence on '#' (or at `MAX_DIGITS`), and
    `flush` returns it when the runtime's timer says the caller stopped pressing keys."""

    def __init__(self) -> None:
        self._digits: list[str] = []

    @property
    def pending(self) -> bool:
        return bool(self._digits)

    def add(self, digit: str) -> str | None:
        """Record one digit (ValueError if it is not a DTMF digit); the sequence when done."""
        if digit not in DTMF_DIGITS:
            raise ValueError(f"not a DTMF digit: {digit[:8]!r}")
        self._digits.append(digit)
        if digit == "#" or len(self._digits) >= MAX_DIGITS:
            return self.flush()
        return None

    def flush(self) -> str | None:
        """The digits so far as one sequence (None if there are none), and start afresh."""
        if not self._digits:
            return None
        sequence = "".join(self._digits)
        self._digits.clear()
        return sequence


def keypad_text(sequence: str) -> str:
    """How a digit sequence reaches the LLM: '[keypad: 1 2 3 #]'."""
    return f"[keypad: {' '.join(sequence)}]"
