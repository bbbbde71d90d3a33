"""Cuts streamed LLM text into speakable clauses for TTS.

The first clause of a reply is cut early (at `, ; :` or after a few words) so speech starts
as soon as possible; later clauses are whole sentences, which TTS speaks more naturally.
A boundary needs the whitespace that follows it, so "3.5", "3,500" and "Dr. Smith" stay whole.
"""

from __future__ import annotations

import re

FIRST_CLAUSE_WORDS = 5
"""The first clause is cut after this many words when no punctuation comes sooner."""
MAX_CLAUSE_CHARS = 250
"""A later clause with no sentence end is cut at the last pause or space before this."""

_ABBREVIATIONS = frozenset(
    {
        "dr", "mr", "mrs", "ms", "mx", "st", "jr", "sr", "prof", "vs", "etc", "inc", "ltd",
        "mt", "ft", "approx", "dept", "sgt", "capt", "gov", "rev", "ave", "blvd",
        "e.g", "i.e", "a.m", "p.m", "u.s", "u.k",
    }
)  # fmt: skip
_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*(?=\s)|\n")
_CLAUSE_END = re.compile(r"[.!?…]+[\"')\]]*(?=\s)|[,;:](?=\s)|\n")
_WORD = re.compile(r"\S+")
_SPEAKABLE = re.compile(r"\w")


class ClauseChunker:
    """Accumulates text deltas of one reply and returns the clauses ready to speak.

    `push(delta)` returns the clauses completed by `delta`, in order; `flush()` returns the
    rest at the end of the reply. Clauses are stripped; fragments with no word character
    (a lone "-" or "...") are joined to the next clause rather than spoken alone.
    """

    def __init__(self, *, first_clause_words: int = FIRST_CLAUSE_WORDS) -> None:
        if first_clause_words < 1:
            raise ValueError(f"first_clause_words must be at least 1, got {first_clause_words}")
        self._first_clause_words = first_clause_words
        self._buffer = ""
        self._emitted = 0

    def push(self, delta: str) -> list[str]:
        """Add streamed text; return the clauses it completes."""
        self._buffer += delta
        clauses: list[str] = []
        while True:
            cut = self._next_cut()
            if cut is None:
                return clauses
            clause = self._buffer[:cut].strip()
            if not _SPEAKABLE.search(clause):
                # Keep a punctuation-only fragment with what follows; cut further on.
                cut = self._next_cut(start=cut)
                if cut is None:
                    return clauses
                clause = self._buffer[:cut].strip()
            self._buffer = self._buffer[cut:]
            self._emitted += 1
            clauses.append(clause)

    def flush(self) -> str | None:
        """The remaining text as a last clause (None when nothing speakable is left)."""
        rest = self._buffer.strip()
        self._buffer = ""
        if not _SPEAKABLE.search(rest):
            return None
        self._emitted += 1
        return rest

    def _next_cut(self, start: int = 0) -> int | None:
        first = self._emitted == 0
        pattern = _CLAUSE_END if first else _SENTENCE_END
        for match in pattern.finditer(self._buffer, start):
            if match.group().startswith(".") and self._is_abbreviation(match.start()):
                continue
            return match.end()
        if first:
            return self._word_cut(start)
        return self._long_cut(start)

    def _is_abbreviation(self, dot: int) -> bool:
        words = _WORD.findall(self._buffer[:dot])
        if not words:
            return False
        word = words[-1].lower().lstrip("\"'([")
        if word in _ABBREVIATIONS:
            return True
        # A single capital letter before the dot is an initial ("J. Smith").
        return len(word) == 1 and word.isalpha() and words[-1][-1].isupper()

    def _word_cut(self, start: int) -> int | None:
        words = list(_WORD.finditer(self._buffer, start))
        if len(words) < self._first_clause_words:
            return None
        end = words[self._first_clause_words - 1].end()
        # The last word is complete only once whitespace follows it.
        return end if end < len(self._buffer) else None

    def _long_cut(self, start: int) -> int | None:
        if len(self._buffer) - start <= MAX_CLAUSE_CHARS:
            return None
        window = self._buffer[start : start + MAX_CLAUSE_CHARS]
        for separator in (", ", "; ", ": ", " "):
            index = window.rfind(separator)
            if index > 0:
                return start + index + 1
        return start + MAX_CLAUSE_CHARS
