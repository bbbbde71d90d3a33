"""CallerAudio: segments for STT, with the look-back, as PCM16 or as the line's mu-law bytes."""

import numpy as np
import pytest

from voxline.audio.mulaw import decode_mulaw, encode_mulaw
from voxline.runtime.listener import CallerAudio

FRAME = 160  # 20 ms at 8 kHz


def frame(seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, FRAME, dtype=np.uint8).tobytes()


def phone_audio(*, stt_mulaw: bool, pre_roll_ms: int = 40) -> CallerAudio:
    return CallerAudio(
        8000, 8000, vad="energy", max_voiced_ms=60, pre_roll_ms=pre_roll_ms, stt_mulaw=stt_mulaw
    )


def test_a_mulaw_segment_starts_with_the_look_back_as_the_line_sent_it() -> None:
    audio = phone_audio(stt_mulaw=True)
    frames = [frame(seed) for seed in range(5)]
    for payload in frames:
        audio.speech_probabilities(decode_mulaw(payload), payload)
    assert audio.open_segment(voiced_ms=20) == b"".join(frames[-3:])


def test_a_mulaw_segment_carries_each_frame_as_is() -> None:
    audio = phone_audio(stt_mulaw=True)
    audio.open_segment(voiced_ms=0)
    payload = frame(9)
    assert audio.segment_audio(decode_mulaw(payload), payload) == payload
    assert audio.close_segment() == b""


def test_a_frame_without_its_bytes_is_encoded_for_a_mulaw_recognizer() -> None:
    audio = phone_audio(stt_mulaw=True)
    audio.open_segment(voiced_ms=0)
    pcm = decode_mulaw(frame(3))
    assert audio.segment_audio(pcm) == encode_mulaw(pcm)


def test_a_pcm_recognizer_gets_pcm_even_when_the_bytes_are_there() -> None:
    audio = phone_audio(stt_mulaw=False)
    payload = frame(4)
    audio.speech_probabilities(decode_mulaw(payload), payload)
    segment = audio.open_segment(voiced_ms=0)
    assert isinstance(segment, np.ndarray)
    assert np.array_equal(segment, decode_mulaw(payload))


def test_mulaw_segments_need_8_khz_on_both_sides() -> None:
    with pytest.raises(ValueError, match="8000 Hz"):
        CallerAudio(16000, 8000, vad="energy", max_voiced_ms=60, stt_mulaw=True)
