"""The held-out recognition set: what callers say to phone agents, as a phone line carries it.

Each line of `utterances.tsv` (a category and the reference text) is spoken by several voices
(the bundled Piper voice and espeak-ng voices), trimmed, resampled to 8 kHz, optionally mixed
with background noise at a set SNR (babble made from other utterances of the same voice, or
pink noise), then sent through a mu-law encode/decode round trip, as Twilio delivers it. Every
step is deterministic: the noise is seeded per utterance. Clean speech is cached per voice
(a few seconds to synthesize again); the noise and the phone band are applied on every load.

Word error rate is scored on normalized text (`normalize`): Whisper's English normalizer
(lowercase, punctuation and fillers stripped, number words to digits, British spellings), with
emails and numbers made comparable first: "@" reads "at" and the dots of an address "dot",
ordinal suffixes go, "p.m." is "pm", and every number becomes its digits one by one, so
"415-555-0134", "four one five..." and "4155550134" all score as the same ten words, and a
wrong digit is one error.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jiwer
import numpy as np
from whisper_normalizer.english import EnglishTextNormalizer

from voxline.audio.mulaw import decode_mulaw, encode_mulaw
from voxline.audio.pcm import Pcm16
from voxline.simulator.speech import read_caller_wav, synthesize_caller_speech

RATE = 8000
UTTERANCES_FILE = Path(__file__).with_name("utterances.tsv")
DEFAULT_CACHE_DIR = Path(__file__).resolve().parents[1] / "results" / "stt_set"
# A VAD segment carries some audio around the words: the pre-roll and the pause that ended it.
_LEAD_S, _TAIL_S = 0.2, 0.2
_BABBLE_TALKERS = 3
_BABBLE_LINES = 4  # lines each babbling talker says, end to end
# Bump when rendering changes, so cached speech is made again.
_RENDER_VERSION = "1"


@dataclass(frozen=True)
class Utterance:
    """One line of the set: an id (its line), a category and the reference text."""

    id: str
    category: str
    text: str


@dataclass(frozen=True)
class Voice:
    """A synthetic speaker: the bundled Piper voice, or espeak-ng with a voice, speed and pitch."""

    name: str
    engine: str
    espeak_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Condition:
    """The line's background: none, or a kind of noise at `snr_db` below the speech."""

    name: str
    noise: str | None = None
    snr_db: float = 0.0


@dataclass(frozen=True)
class Sample:
    """One utterance of one voice in one condition: mono PCM16 at 8 kHz after the phone band."""

    utterance: Utterance
    voice: str
    condition: str
    pcm: Pcm16


VOICES = {
    voice.name: voice
    for voice in (
        Voice("piper-joe", "piper"),
        Voice("espeak-us", "espeak", ("-v", "en-us", "-s", "165", "-p", "45")),
        Voice("espeak-gb-f", "espeak", ("-v", "en-gb+f3", "-s", "150", "-p", "60")),
    )
}
CONDITIONS = {
    condition.name: condition
    for condition in (
        Condition("clean"),
        Condition("babble-15db", "babble", 15.0),
        Condition("pink-15db", "pink", 15.0),
    )
}


class RecognitionSetError(RuntimeError):
    """The set cannot be made on this machine (a synthesizer is missing)."""


def load_utterances(path: Path = UTTERANCES_FILE) -> list[Utterance]:
    """The set's lines in file order, `#` comments skipped; ids are `<category>-<n>`."""
    utterances: list[Utterance] = []
    counts: dict[str, int] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        category, text = line.split("\t", 1)
        counts[category] = counts.get(category, 0) + 1
        utterances.append(Utterance(f"{category}-{counts[category]}", category, text.strip()))
    return utterances


def build_set(
    utterances: Sequence[Utterance],
    voices: Sequence[str] = tuple(VOICES),
    conditions: Sequence[str] = tuple(CONDITIONS),
    cache_dir: Path | None = DEFAULT_CACHE_DIR,
) -> list[Sample]:
    """Every utterance in every voice and condition, voice by voice (blocking).

    Raises RecognitionSetError when espeak-ng is needed and missing.
    """
    samples: list[Sample] = []
    for voice_name in voices:
        clean = speak(VOICES[voice_name], utterances, cache_dir)
        for condition_name in conditions:
            condition = CONDITIONS[condition_name]
            for index, utterance in enumerate(utterances):
                pcm = phone_band(clean, index, condition)
                samples.append(Sample(utterance, voice_name, condition_name, pcm))
    return samples


def speak(voice: Voice, utterances: Sequence[Utterance], cache_dir: Path | None) -> list[Pcm16]:
    """Clean, trimmed speech at 8 kHz for each utterance, from `cache_dir` when it was made."""
    key = hashlib.sha256(
        repr((_RENDER_VERSION, voice, [u.text for u in utterances])).encode()
    ).hexdigest()[:16]
    path = None if cache_dir is None else cache_dir / f"{voice.name}-{key}.npz"
    if path is not None and path.exists():
        with np.load(path) as cached:
            return [cached[f"u{index}"] for index in range(len(utterances))]
    speech = [_synthesize(voice, utterance.text) for utterance in utterances]
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **{f"u{index}": pcm for index, pcm in enumerate(speech)})
    return speech


def phone_band(clean: Sequence[Pcm16], index: int, condition: Condition) -> Pcm16:
    """Utterance `index` of `clean` with lead and tail, noise if any, through mu-law."""
    speech = clean[index].astype(np.float64)
    pad = np.zeros(int(_LEAD_S * RATE)), np.zeros(int(_TAIL_S * RATE))
    signal = np.concatenate([pad[0], speech, pad[1]])
    if condition.noise is not None:
        rng = np.random.default_rng(index)
        if condition.noise == "babble":
            noise = _babble(clean, index, signal.size, rng)
        else:
            noise = _pink(signal.size, rng)
        speech_power = float(np.mean(np.square(speech)))
        noise_power = float(np.mean(np.square(noise))) or 1.0
        gain = np.sqrt(speech_power / noise_power / 10 ** (condition.snr_db / 10))
        signal = signal + gain * noise
    pcm = np.clip(np.round(signal), -32768, 32767).astype(np.int16)
    return decode_mulaw(encode_mulaw(pcm))


def normalize(text: str) -> str:
    """`text` as the words that word error rate compares (see the module docstring)."""
    text = re.sub(r"\S+@\S+|\b[\w.]+\.(?:com|org|net|edu|io)\b", _spell_address, text)
    text = re.sub(r"(?<=\d)(?:st|nd|rd|th)\b", "", text)
    text = re.sub(r"\b([ap])\.? ?m\b\.?", r"\1m", text, flags=re.IGNORECASE)
    text = re.sub(r"(?<=\d)[.:](?=\d)", " ", text)
    text = re.sub(r"\d", lambda digit: f" {_DIGITS[int(digit.group())]} ", text)
    words = re.findall(r"[a-z]+|\d", _NORMALIZER(text))
    words = [_SAME_WORDS.get(word, word) for word in words]
    return " ".join(word for word in words if word not in ("st", "nd", "rd", "th"))


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus WER of normalized texts: word edits over reference words (an empty text scores
    as all deletions or insertions)."""
    pairs = [
        (normalize(ref), normalize(hyp)) for ref, hyp in zip(references, hypotheses, strict=True)
    ]
    output = jiwer.process_words(
        [ref or "<empty>" for ref, _ in pairs], [hyp or "<empty>" for _, hyp in pairs]
    )
    errors = output.substitutions + output.deletions + output.insertions
    return errors / max(1, sum(len(ref.split()) for ref, _ in pairs))


def _spell_address(match: re.Match[str]) -> str:
    return match.group().replace("@", " at ").replace(".", " dot ")


_DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_NORMALIZER = EnglishTextNormalizer()
_SAME_WORDS = {"ok": "okay"}


def _synthesize(voice: Voice, text: str) -> Pcm16:
    if voice.engine == "piper":
        return synthesize_caller_speech(text, RATE)
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise RecognitionSetError(
            "espeak-ng is missing: install it (Debian: `apt-get install espeak-ng`; "
            "scripts/bootstrap.sh does it)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run([espeak, *voice.espeak_args, "-w", str(wav), text], check=True)
        return read_caller_wav(wav, RATE)


def _babble(
    clean: Sequence[Pcm16], index: int, length: int, rng: np.random.Generator
) -> np.ndarray:
    """Other utterances of the same voice talking over each other, looped to `length`."""
    others = [i for i in range(len(clean)) if i != index] or [index]
    noise = np.zeros(length)
    for _ in range(_BABBLE_TALKERS):
        picked = rng.choice(others, size=min(len(others), _BABBLE_LINES), replace=False)
        stream = np.concatenate([clean[j].astype(np.float64) for j in picked])
        start = int(rng.integers(0, max(1, stream.size - length)))
        noise += np.resize(stream[start:], length)
    return noise


def _pink(length: int, rng: np.random.Generator) -> np.ndarray:
    """Pink (1/f) noise: white noise shaped in the frequency domain."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    scale = 1 / np.sqrt(np.maximum(1, np.arange(spectrum.size)))
    return np.fft.irfft(spectrum * scale, n=length)
