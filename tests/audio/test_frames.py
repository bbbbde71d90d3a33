import numpy as np
import pytest

from voxline.audio.frames import (
    FrameBuffer,
    duration_ms,
    frame_samples,
    pcm16_from_bytes,
    pcm16_to_bytes,
    silence,
)


def ramp(count: int, start: int = 0) -> np.ndarray:
    return np.arange(start, start + count, dtype=np.int16)


@pytest.mark.parametrize(("rate", "samples"), [(8000, 160), (16000, 320), (22050, 441)])
def test_frame_samples_of_20_ms(rate: int, samples: int) -> None:
    assert frame_samples(rate) == samples


def test_frame_samples_rejects_a_fractional_sample_count() -> None:
    with pytest.raises(ValueError, match="whole number"):
        frame_samples(22050, 10)


def test_frame_samples_rejects_a_non_positive_rate() -> None:
    with pytest.raises(ValueError, match="positive"):
        frame_samples(0, 20)


def test_duration_ms_counts_samples_at_the_rate() -> None:
    assert duration_ms(np.zeros(1200, dtype=np.int16), 8000) == 150.0


def test_silence_is_zeros_of_the_requested_duration() -> None:
    quiet = silence(16000, 30)
    assert quiet.dtype == np.int16
    assert quiet.shape == (480,)
    assert not quiet.any()


def test_pcm16_bytes_are_little_endian() -> None:
    assert pcm16_to_bytes(np.array([1, -2], dtype=np.int16)) == b"\x01\x00\xfe\xff"
    np.testing.assert_array_equal(pcm16_from_bytes(b"\x01\x00\xfe\xff"), [1, -2])


def test_pcm16_from_bytes_rejects_an_odd_byte_count() -> None:
    with pytest.raises(ValueError, match="even"):
        pcm16_from_bytes(b"\x00\x01\x02")


def test_pcm16_to_bytes_rejects_non_int16_audio() -> None:
    with pytest.raises(ValueError, match="int16"):
        pcm16_to_bytes(np.zeros(4, dtype=np.int32))


def test_short_push_is_kept_until_a_frame_is_complete() -> None:
    buffer = FrameBuffer(160)
    assert buffer.push(ramp(100)) == []
    assert buffer.pending == 100
    frames = buffer.push(ramp(100, start=100))
    assert len(frames) == 1
    np.testing.assert_array_equal(frames[0], ramp(160))
    assert buffer.pending == 40


def test_frames_from_irregular_chunks_rebuild_the_stream_in_order() -> None:
    stream = ramp(20_000, start=-10_000)
    buffer = FrameBuffer(160)
    sizes = np.random.default_rng(7).integers(0, 700, size=200)
    frames: list[np.ndarray] = []
    offset = 0
    for size in sizes:
        frames.extend(buffer.push(stream[offset : offset + size]))
        offset += size
        if offset >= stream.size:
            break
    fed = min(offset, stream.size)
    assert all(frame.shape == (160,) for frame in frames)
    np.testing.assert_array_equal(np.concatenate(frames), stream[: len(frames) * 160])
    assert buffer.pending == fed - len(frames) * 160


def test_push_block_returns_one_frame_per_row() -> None:
    block = FrameBuffer(160).push_block(ramp(500))
    assert block.shape == (3, 160)
    np.testing.assert_array_equal(block.reshape(-1), ramp(480))


def test_push_block_with_no_complete_frame_is_empty() -> None:
    assert FrameBuffer(160).push_block(ramp(10)).shape == (0, 160)


def test_drain_returns_the_partial_frame_and_empties_the_buffer() -> None:
    buffer = FrameBuffer(160)
    buffer.push(ramp(170))
    np.testing.assert_array_equal(buffer.drain(), ramp(10, start=160))
    assert buffer.pending == 0
    assert buffer.drain().shape == (0,)


def test_clear_drops_the_partial_frame() -> None:
    buffer = FrameBuffer(160)
    buffer.push(ramp(100))
    buffer.clear()
    frames = buffer.push(ramp(160, start=500))
    np.testing.assert_array_equal(frames[0], ramp(160, start=500))


def test_push_rejects_two_dimensional_audio() -> None:
    with pytest.raises(ValueError, match="1-D"):
        FrameBuffer(160).push(np.zeros((2, 160), dtype=np.int16))


def test_frame_buffer_rejects_a_non_positive_frame_size() -> None:
    with pytest.raises(ValueError, match="positive"):
        FrameBuffer(0)
