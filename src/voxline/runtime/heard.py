"""What the caller heard of an agent message, from how many of its samples were played.

Each clause occupies a span of the message's audio. Clauses played to their end were heard
whole; within the clause playing when speech stopped, words count as heard in proportion to
their length in characters (speech time roughly follows text length), rounded down to whole
words: claiming a word the caller did not hear is worse than missing one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_WORD = re.compile(r"\S+")


@dataclass(slots=True)
class ClauseSpan:
    """A clause and the samples `[start, end)` of its audio within its message."""

    text: str
    start: int
    end: int


def split_heard(spans: Sequence[ClauseSpan], heard_samples: int) -> tuple[str, str]:
    """The message's text split into (heard, not heard), each clause-joined with spaces."""
    heard: list[str] = []
    unheard: list[str] = []
    for span in spans:
        if heard_samples >= span.end:
            heard.append(span.text)
            continue
        if heard_samples <= span.start:
            unheard.append(span.text)
            continue
        fraction = (heard_samples - span.start) / (span.end - span.start)
        before, after = _split_words(span.text, fraction)
        if before:
            heard.append(before)
        if after:
            unheard.append(after)
    return " ".join(heard), " ".join(unheard)


def _split_words(text: str, fraction: float) -> tuple[str, str]:
    words = list(_WORD.finditer(text))
    length = len(text)
    cut = 0
    for word in words:
        if word.end() / length <= fraction:
            cut = word.end()
        else:
            break
    return text[:cut].strip(), text[cut:].strip()
