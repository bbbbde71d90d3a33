"""Backchannels: "yeah", "okay", "mm-hmm" said while the agent speaks, which a person talking
hears and goes on.

`classify` judges what the caller said over the agent from its words:
- a backchannel: every word is one of the language's acknowledgements, or a sound a
  recognizer makes of a hum or a filler;
- words: a barge-in cue ("sorry", "wait", "no"...), or three words or more that are neither;
- unsure: one or two such words (a recognizer often mishears a short acknowledgement or a hum
  as some: "sure" as "your", "mm-hmm" as "and then one"), to be settled by more words, or by
  the utterance staying short;
- nothing: no words (yet): a cough, a click, a breath.
The lists are per language; the agent's `language` picks one (English when voxline has none
for it), and an agent may add its own phrases.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable

_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*", re.UNICODE)

# Acknowledgements a listener says without taking the turn, by language (ISO 639-1).
_PHRASES: dict[str, frozenset[str]] = {
    "en": frozenset(
        {
            "yeah", "yea", "yes", "yep", "yup", "ya", "okay", "ok", "k", "right", "alright",
            "all right", "sure", "uh-huh", "uh huh", "mm-hmm", "mm hmm", "mhm", "mm", "hmm",
            "hm", "mmm", "i see", "got it", "gotcha", "cool", "great", "good", "nice",
            "totally", "exactly", "true", "indeed", "of course", "oh", "ah", "wow",
            "oh okay", "okay okay", "yeah yeah", "right right", "sure sure", "i know",
            "that's right", "makes sense", "fine", "perfect", "awesome", "understood",
        }
    ),
    "es": frozenset(
        {"sí", "si", "vale", "claro", "ajá", "aja", "ya", "bueno", "entiendo", "mhm", "mm",
         "ok", "okey", "de acuerdo", "exacto", "perfecto", "ah", "oh", "ya veo"}
    ),
    "fr": frozenset(
        {"oui", "ouais", "d'accord", "ok", "okay", "mhm", "mm", "hum", "ah", "oh", "bien",
         "voilà", "exactement", "je vois", "c'est ça", "bien sûr", "parfait", "entendu"}
    ),
    "de": frozenset(
        {"ja", "jaja", "genau", "okay", "ok", "mhm", "mm", "hm", "ah", "oh", "richtig",
         "stimmt", "klar", "gut", "verstehe", "alles klar", "sicher", "natürlich"}
    ),
    "pt": frozenset(
        {"sim", "é", "tá", "ok", "okay", "certo", "claro", "aham", "uhum", "mhm", "mm",
         "ah", "oh", "entendi", "exato", "beleza", "perfeito"}
    ),
    "it": frozenset(
        {"sì", "si", "certo", "ok", "okay", "va bene", "esatto", "mhm", "mm", "ah", "oh",
         "capisco", "giusto", "perfetto", "chiaro", "ecco"}
    ),
    "nl": frozenset(
        {"ja", "jaja", "oké", "ok", "okay", "precies", "klopt", "mhm", "mm", "hm", "ah",
         "oh", "goed", "prima", "zeker", "juist", "ik snap het"}
    ),
}  # fmt: skip

# Words that open a barge-in, by language: one of them is enough to stop the agent.
_CUES: dict[str, frozenset[str]] = {
    "en": frozenset(
        {"sorry", "wait", "stop", "no", "nope", "hold", "actually", "actual", "excuse", "hang",
         "what", "why", "how", "when", "where", "who", "can", "could", "would", "but", "hey",
         "listen", "please", "question", "pardon", "hello"}
    ),
    "es": frozenset({"perdón", "perdona", "espera", "no", "pero", "oiga", "oye", "qué", "cómo",
                     "cuándo", "dónde", "puede", "puedes", "disculpe"}),
    "fr": frozenset({"pardon", "attendez", "attends", "non", "mais", "excusez", "quoi",
                     "comment", "quand", "où", "pouvez"}),
    "de": frozenset({"entschuldigung", "warten", "warte", "moment", "nein", "aber", "halt",
                     "was", "wie", "wann", "wo", "können", "kann"}),
    "pt": frozenset({"desculpe", "espera", "espere", "não", "mas", "como", "quando", "onde",
                     "pode", "olha"}),
    "it": frozenset({"scusi", "scusa", "aspetta", "aspetti", "no", "ma", "cosa", "come",
                     "quando", "dove", "può", "puoi"}),
    "nl": frozenset({"sorry", "wacht", "nee", "maar", "wat", "hoe", "wanneer", "waar", "kunt",
                     "kun"}),
}  # fmt: skip

# What a recognizer makes of a hum or a breath: Whisper tiny hears "mm-hmm" as "in", "in the",
# "and I'm", "in Emma", "Amen, mama"; "uh-huh" as "oh". Fillers and lone function words carry
# no request when they are all the caller said over the agent (a barge-in that starts with
# one is decided by the words that follow).
_HUM_SOUNDS = frozenset(
    {"in", "a", "an", "the", "and", "to", "it", "i", "am", "i'm", "um", "uh", "er", "erm",
     "huh", "eh", "ha", "hmm", "mm", "hm", "emma", "amen", "mama"}
)  # fmt: skip


_HUM = re.compile(r"^(?:m+[mnh]*s?|[mnh]{2,}r?s?|(?:ma)+m?|(?:uh|ah|oh|eh|um|hm|mm|a|o|u|-)+)$")
"""Tokens a recognizer writes for a hum: "mmm", "mms", "nmr", "mhm", "mamam", "uh", "ah"..."""
_WORDS_AT = 3
"""This many words that are neither acknowledgements nor hums are real words."""


class Said(enum.Enum):
    NOTHING = "nothing"
    """No words (yet): a cough, a click, a breath, or speech not recognized so far."""
    BACKCHANNEL = "backchannel"
    UNSURE = "unsure"
    """One word that is neither: more words, or the transcript, will tell."""
    WORDS = "words"
    """Real words: the caller is taking the turn."""


class Backchannels:
    """The backchannel phrases of one agent: its language's, plus its own."""

    def __init__(self, language: str, extra: Iterable[str] = ()) -> None:
        code = language.split("-")[0].lower()
        if code not in _PHRASES:
            code = "en"
        phrases = set(_PHRASES[code])
        phrases.update(_normalize(phrase) for phrase in extra)
        self._phrases = frozenset(phrases)
        self._words = frozenset(word for phrase in self._phrases for word in phrase.split())
        self._cues = _CUES[code]

    def classify(self, text: str) -> Said:
        """What `text` (the caller's words over the agent, complete or so far) is."""
        words = _collapse(_normalize(text).split())
        if not words:
            return Said.NOTHING
        if " ".join(words) in self._phrases:
            return Said.BACKCHANNEL
        if any(word in self._cues for word in words):
            return Said.WORDS
        other = {word for word in words if not self._acknowledges(word)}
        if not other:
            return Said.BACKCHANNEL
        return Said.WORDS if len(other) >= _WORDS_AT else Said.UNSURE

    def _acknowledges(self, word: str) -> bool:
        return word in self._words or word in _HUM_SOUNDS or _HUM.match(word) is not None


def _normalize(text: str) -> str:
    return " ".join(match.group(0).lower().replace("’", "'") for match in _WORD.finditer(text))


def _collapse(words: list[str]) -> list[str]:
    """Drop immediate repeats ("yeah yeah yeah": a short decode often repeats itself)."""
    collapsed: list[str] = []
    for word in words:
        if not collapsed or collapsed[-1] != word:
            collapsed.append(word)
    return collapsed
