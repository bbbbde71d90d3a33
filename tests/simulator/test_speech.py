"""Caller speech from text (Piper) and from WAV files."""

import wave
from pathlib import Path

import numpy as np
import pytest

from voxline.simulator.speech import (
    CallerSpeechError,
    read_caller_wav,
    synthesize_caller_speech,
    trim_silence,
)


def _write_wav(path: Path, frames: np.ndarray, rate: int, channels: int, width: int = 2) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(frames.tobytes())


def test_synthesized_speech_is_deterministic_trimmed_8khz_pcm() -> None:
    first = synthesize_caller_speech("Hello there.")
    second = synthesize_caller_speech("Hello there.")
    assert first.dtype == np.int16 and first.ndim == 1
    assert np.array_equal(first, second)
    assert 0.3 < len(first) / 8000 < 3.0
    assert abs(int(first[0])) > 200 and abs(int(first[-1])) > 200


def test_blank_text_is_refused() -> None:
    with pytest.raises(CallerSpeechError):
        synthesize_caller_speech("   ")


def test_a_stereo_wav_is_mixed_down_resampled_and_trimmed(tmp_path: Path) -> None:
    tone = (np.sin(np.arange(16000) * 0.2) * 8000).astype(np.int16)
    silence = np.zeros(4000, dtype=np.int16)
    mono = np.concatenate([silence, tone, silence])
    _write_wav(tmp_path / "a.wav", np.repeat(mono, 2).astype("<i2"), 16000, channels=2)

    pcm = read_caller_wav(tmp_path / "a.wav")

    assert pcm.dtype == np.int16
    assert len(pcm) == pytest.approx(8000, abs=20)  # one second of tone at 8 kHz


def test_a_wav_that_is_not_16_bit_is_refused_with_a_hint(tmp_path: Path) -> None:
    _write_wav(tmp_path / "a.wav", np.full(800, 200, dtype=np.uint8), 8000, channels=1, width=1)
    with pytest.raises(CallerSpeechError, match="16-bit"):
        read_caller_wav(tmp_path / "a.wav")


def test_a_file_that_is_not_a_wav_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_text("not audio")
    with pytest.raises(CallerSpeechError, match="not a PCM WAV"):
        read_caller_wav(tmp_path / "a.wav")


def test_a_silent_wav_is_refused(tmp_path: Path) -> None:
    _write_wav(tmp_path / "a.wav", np.zeros(8000, dtype="<i2"), 8000, channels=1)
    with pytest.raises(CallerSpeechError, match="no audible speech"):
        read_caller_wav(tmp_path / "a.wav")


def test_trimming_keeps_everything_between_the_first_and_last_loud_sample() -> None:
    pcm = np.array([0, 5, 1000, 0, -1000, 3, 0], dtype=np.int16)
    assert trim_silence(pcm).tolist() == [1000, 0, -1000]
