"""Keeping an instance's memory within its budget: which notes to fold, and the plain
fallback when the model cannot fold them."""

from __future__ import annotations

from collections.abc import Sequence

from voxline.store.instances import MemoryNote

_ELLIPSIS = "…"


def notes_to_fold(notes: Sequence[MemoryNote], budget_chars: int) -> list[MemoryNote]:
    """The oldest notes to fold into one so that the memory fits `budget_chars`: none while it
    fits; otherwise the oldest ones until what is left is within half the budget (room for
    the folded note), never the newest note."""
    total = sum(len(note.text) for note in notes)
    if total <= budget_chars or len(notes) < 2:
        return []
    chosen: list[MemoryNote] = []
    for note in notes[:-1]:
        chosen.append(note)
        total -= len(note.text)
        if total <= budget_chars // 2:
            break
    return chosen


def truncated(notes: Sequence[MemoryNote], limit_chars: int) -> str:
    """The notes' texts joined, oldest first, cut to their last `limit_chars` characters
    (the newest facts) behind an ellipsis: the fold when the model fails."""
    joined = " / ".join(note.text.strip() for note in notes)
    if len(joined) <= limit_chars:
        return joined
    return _ELLIPSIS + joined[len(joined) - limit_chars + len(_ELLIPSIS) :]
