"""Caller speech for simulated calls: text spoken by the local Piper voice, or a WAV file,
as mono PCM16 at the rate the simulator sends (8 kHz by default).

Synthesis is deterministic (Piper's noise off), so the same line always gives the same
samples. Leading and trailing silence is trimmed: the end of the audio is the end of speech,
which is where turn latency starts.
"""

from __future__ import annotations

import functools
import wave
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from voxline.audio.frames import pcm16_from_bytes
from voxline.audio.pcm import Pcm16
from voxline.audio.resample import resample
from voxline.providers.local_models import (
    BUNDLED_PIPER_VOICE,
    PIPER_EXTRA,
    import_optional,
    piper_voice_files,
)
from voxline.simulator.playout import SAMPLE_RATE

if TYPE_CHECKING:
    from piper import PiperVoice

# About -44 dBFS: quieter samples at either end (breath, dither) count as silence.
SILENCE_THRESHOLD = 200


class CallerSpeechError(ValueError):
    """Caller speech could not be made from the given text or file."""


def synthesize_caller_speech(text: str, rate: int = SAMPLE_RATE) -> Pcm16:
    """`text` spoken by the bundled Piper voice (blocking), trimmed, as PCM16 at `rate`.

    Raises `ProviderUnavailable` naming the extra to install when Piper is missing, and
    `CallerSpeechError` for blank text.
    """
    if not text.strip():
        raise CallerSpeechError("a caller line must not be blank")
    voice = _voice()
    config = import_optional("piper", "piper-tts", PIPER_EXTRA).SynthesisConfig(
        noise_scale=0.0, noise_w_scale=0.0
    )
    chunks = [chunk.audio_int16_array for chunk in voice.synthesize(text, syn_config=config)]
    if not chunks:
        raise CallerSpeechError(f"Piper produced no audio for {text!r}")
    pcm = np.concatenate(chunks).astype(np.int16, copy=False)
    return trim_silence(resample(pcm, int(voice.config.sample_rate), rate))


def read_caller_wav(path: Path, rate: int = SAMPLE_RATE) -> Pcm16:
    """A 16-bit PCM WAV file (any rate, channels mixed down), trimmed, as PCM16 at `rate`."""
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, native_rate = (
                wav.getnchannels(),
                wav.getsampwidth(),
                wav.getframerate(),
            )
            data = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise CallerSpeechError(
            f"{path} is not a PCM WAV file ({exc}); convert it, e.g. "
            "`ffmpeg -i in.wav -acodec pcm_s16le out.wav`"
        ) from exc
    if width != 2:
        raise CallerSpeechError(
            f"{path} has {8 * width}-bit samples; voxline reads 16-bit PCM WAV files "
            "(`ffmpeg -i in.wav -acodec pcm_s16le out.wav`)"
        )
    samples = pcm16_from_bytes(data)
    if channels > 1:
        frames = samples[: len(samples) - len(samples) % channels].reshape(-1, channels)
        samples = frames.mean(axis=1).round().astype(np.int16)
    pcm = trim_silence(resample(samples, native_rate, rate))
    if pcm.size == 0:
        raise CallerSpeechError(f"{path} holds no audible speech")
    return pcm


def trim_silence(pcm: Pcm16, threshold: int = SILENCE_THRESHOLD) -> Pcm16:
    """`pcm` without the samples at its ends that are no louder than `threshold`."""
    # Two comparisons rather than abs(): abs(-32768) overflows int16.
    loud = np.flatnonzero((pcm > threshold) | (pcm < -threshold))
    if loud.size == 0:
        return pcm[:0]
    return pcm[int(loud[0]) : int(loud[-1]) + 1]


@functools.cache
def _voice() -> PiperVoice:
    piper = import_optional("piper", "piper-tts", PIPER_EXTRA)
    onnx, config = piper_voice_files(BUNDLED_PIPER_VOICE)
    voice: PiperVoice = piper.PiperVoice.load(onnx, config_path=config)
    return voice
