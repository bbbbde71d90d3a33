import numpy as np
import pytest

from voxline.audio.resample import StreamResampler, resample

RATE_PAIRS = [(8000, 16000), (16000, 8000), (22050, 8000), (24000, 16000)]


def speech_band_signal(rate: int, seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    noise = np.random.default_rng(3).standard_normal(t.size) * 300
    return (6000 * np.sin(2 * np.pi * 440 * t) + noise).astype(np.int16)


def stream_in_chunks(resampler: StreamResampler, pcm: np.ndarray, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    parts = []
    offset = 0
    while offset < pcm.size:
        size = int(rng.integers(1, 900))
        parts.append(resampler.process(pcm[offset : offset + size]))
        offset += size
    parts.append(resampler.flush())
    return np.concatenate(parts)


@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
def test_streaming_in_irregular_chunks_matches_one_shot(in_rate: int, out_rate: int) -> None:
    pcm = speech_band_signal(in_rate)
    streamed = stream_in_chunks(StreamResampler(in_rate, out_rate), pcm)
    one_shot = resample(pcm, in_rate, out_rate)
    assert streamed.shape == one_shot.shape
    assert np.abs(streamed.astype(np.int32) - one_shot).max() <= 4


@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
def test_streaming_preserves_duration(in_rate: int, out_rate: int) -> None:
    pcm = speech_band_signal(in_rate, seconds=1.5)
    streamed = stream_in_chunks(StreamResampler(in_rate, out_rate), pcm)
    assert streamed.dtype == np.int16
    assert streamed.size == round(pcm.size * out_rate / in_rate)


@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
def test_resampled_tone_keeps_its_pitch_and_level(in_rate: int, out_rate: int) -> None:
    t = np.arange(in_rate) / in_rate
    tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    out = resample(tone, in_rate, out_rate).astype(np.float64)
    expected = 8000 * np.sin(2 * np.pi * 440 * np.arange(out.size) / out_rate)
    middle = slice(out_rate // 10, -out_rate // 10)  # the edges ring
    assert np.abs(out[middle] - expected[middle]).max() < 80


def test_flush_readies_the_resampler_for_a_new_stream() -> None:
    pcm = speech_band_signal(8000, seconds=1.0)
    resampler = StreamResampler(8000, 16000)
    first = np.concatenate([resampler.process(pcm), resampler.flush()])
    second = np.concatenate([resampler.process(pcm), resampler.flush()])
    assert second.shape == first.shape
    assert np.abs(second.astype(np.int32) - first).max() <= 4


def test_equal_rates_pass_audio_through() -> None:
    pcm = speech_band_signal(16000, seconds=0.1)
    resampler = StreamResampler(16000, 16000)
    assert resampler.process(pcm) is pcm
    assert resampler.flush().shape == (0,)


def test_one_shot_with_equal_rates_returns_a_copy() -> None:
    pcm = speech_band_signal(8000, seconds=0.1)
    out = resample(pcm, 8000, 8000)
    np.testing.assert_array_equal(out, pcm)
    assert out is not pcm


def test_resampler_rejects_a_non_positive_rate() -> None:
    with pytest.raises(ValueError, match="in_rate"):
        StreamResampler(0, 8000)


def test_process_rejects_non_int16_audio() -> None:
    with pytest.raises(ValueError, match="int16"):
        StreamResampler(8000, 16000).process(np.zeros(160, dtype=np.float32))
