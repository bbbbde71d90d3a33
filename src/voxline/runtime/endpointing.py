"""How long a silence ends the caller's turn, judged from what they have said so far.

A clearly complete utterance of three words or more ("What time do you open?", "Thank you
very much", any question the recognizer punctuated as one) ends after the short
`min_end_of_turn_silence_ms`; one that trails off ("I'd like to book a table and", "um", a
phone number being dictated) waits `max_end_of_turn_silence_ms`; anything else, a word or two
included ("Yes.", "Hello,", which often open a longer sentence), waits
`end_of_turn_silence_ms`.
"""

from __future__ import annotations

import re

from voxline.agent_spec import TurnTaking

_TRAILING_WORDS = frozenset(
    {
        "and", "or", "but", "so", "because", "cause", "then", "if", "that", "which", "who",
        "the", "a", "an", "my", "your", "our", "their", "his", "her", "its", "this",
        "to", "of", "for", "with", "in", "on", "at", "from", "by", "about",
        "um", "umm", "uh", "uhh", "er", "erm", "hmm", "like", "is", "are", "was", "i'm",
    }
)  # fmt: skip
_COMPLETE_ANSWERS = frozenset(
    {
        "yes", "yeah", "yep", "yup", "no", "nope", "nah", "sure", "okay", "ok", "right",
        "correct", "exactly", "thanks", "thank you", "thank you very much", "thanks a lot",
        "no thanks", "no thank you", "yes please", "hello", "hi", "bye", "goodbye",
        "that's right", "that's all", "that's it", "of course", "absolutely", "perfect",
        "great", "fine", "alright", "all right", "got it",
    }
)  # fmt: skip
_NUMBER_WORDS = frozenset(
    {
        "zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight",
        "nine", "ten", "double", "triple",
    }
)  # fmt: skip
_WORD = re.compile(r"[\w']+")
_OPENING_WORDS = 2
"""Utterances this short wait the default silence, complete or not."""
_TRAILING_PUNCTUATION = ("...", "…", ",", "-", "–", "—", ":", ";")
_FINAL_PUNCTUATION = (".", "?", "!")


def endpoint_ms(transcript: str | None, turn_taking: TurnTaking) -> int:
    """The silence (ms) that ends a turn whose words so far are `transcript` (None: unknown)."""
    if transcript is None:
        return turn_taking.end_of_turn_silence_ms
    text = transcript.strip()
    words = [word.lower() for word in _WORD.findall(text)]
    if not words:
        return turn_taking.end_of_turn_silence_ms
    if _trails_off(text, words):
        return max(turn_taking.max_end_of_turn_silence_ms, turn_taking.end_of_turn_silence_ms)
    if len(words) <= _OPENING_WORDS:
        # "Hello," "Great," "Yes," often open a sentence after a pause of 300-400 ms, and a
        # fast recognizer returns them, punctuated as complete, within that pause.
        return turn_taking.end_of_turn_silence_ms
    if text.endswith(_FINAL_PUNCTUATION) or " ".join(words) in _COMPLETE_ANSWERS:
        return min(turn_taking.min_end_of_turn_silence_ms, turn_taking.end_of_turn_silence_ms)
    return turn_taking.end_of_turn_silence_ms


def _trails_off(text: str, words: list[str]) -> bool:
    if text.endswith(_TRAILING_PUNCTUATION):
        return True
    if text.endswith("?"):
        # The recognizer heard a question end; a trailing word before it is a mishearing
        # ("Can I bring my daughter to?" for "too"), not a sentence left open.
        return False
    # Recognizers often end every segment with a period, so the last word decides first.
    if words[-1] in _TRAILING_WORDS:
        return True
    return _dictating_number(text, words)


def _dictating_number(text: str, words: list[str]) -> bool:
    last = words[-1]
    if not _is_number(last):
        return False
    if len(words) >= 2 and _is_number(words[-2]):
        return True  # "five five five", "555 0123": a sequence being read out
    # A lone number with nothing after it ("my number is 5") is still going.
    return not text.endswith(_FINAL_PUNCTUATION)


def _is_number(word: str) -> bool:
    return word.isdigit() or word in _NUMBER_WORDS
