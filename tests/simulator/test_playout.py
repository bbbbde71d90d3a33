import numpy as np

from voxline.audio.pcm import Pcm16
from voxline.simulator.playout import PlayoutBuffer, first_audible, last_audible


def _audio(seconds: float, level: int = 1000) -> Pcm16:
    return np.full(round(seconds * 8000), level, dtype=np.int16)


def test_audio_arriving_while_idle_plays_at_once() -> None:
    buffer = PlayoutBuffer()
    segment = buffer.push(1.0, _audio(0.5))
    assert (segment.start, segment.end) == (1.0, 1.5)


def test_audio_arriving_while_busy_plays_after_what_is_buffered() -> None:
    buffer = PlayoutBuffer()
    buffer.push(1.0, _audio(0.5))
    segment = buffer.push(1.1, _audio(0.25))
    assert (segment.start, segment.end) == (1.5, 1.75)


def test_mark_with_nothing_buffered_is_due_at_once() -> None:
    buffer = PlayoutBuffer()
    buffer.push(1.0, _audio(0.5))
    assert buffer.mark(2.0, "m").due_at == 2.0
    assert [m.name for m in buffer.pop_due_marks(2.0)] == ["m"]


def test_mark_is_due_when_the_audio_before_it_has_played() -> None:
    buffer = PlayoutBuffer()
    buffer.push(1.0, _audio(0.5))
    buffer.mark(1.1, "m")
    assert buffer.pop_due_marks(1.49) == []
    assert buffer.next_mark_due() == 1.5
    assert [m.name for m in buffer.pop_due_marks(1.5)] == ["m"]


def test_due_marks_come_out_in_order() -> None:
    buffer = PlayoutBuffer()
    buffer.push(0.0, _audio(0.1))
    buffer.mark(0.0, "a")
    buffer.push(0.0, _audio(0.1))
    buffer.mark(0.0, "b")
    assert [m.name for m in buffer.pop_due_marks(0.15)] == ["a"]
    assert [m.name for m in buffer.pop_due_marks(0.2)] == ["b"]


def test_clear_cuts_the_playing_audio_and_drops_the_rest() -> None:
    buffer = PlayoutBuffer()
    playing = buffer.push(0.0, _audio(0.5))
    waiting = buffer.push(0.0, _audio(0.5))
    buffer.clear(0.2)
    assert playing.end == 0.2
    assert playing.played_samples == 1600
    assert waiting.played_samples == 0


def test_clear_releases_every_pending_mark() -> None:
    buffer = PlayoutBuffer()
    buffer.push(0.0, _audio(0.5))
    buffer.mark(0.0, "a")
    buffer.push(0.0, _audio(0.5))
    buffer.mark(0.0, "b")
    assert [m.name for m in buffer.clear(0.2)] == ["a", "b"]
    assert buffer.next_mark_due() is None


def test_audio_after_clear_plays_from_its_arrival() -> None:
    buffer = PlayoutBuffer()
    buffer.push(0.0, _audio(1.0))
    buffer.clear(0.2)
    assert buffer.push(0.3, _audio(0.1)).start == 0.3


def test_first_audible_skips_quiet_samples() -> None:
    buffer = PlayoutBuffer()
    buffer.push(0.0, np.concatenate([_audio(0.1, level=10), _audio(0.1)]))
    assert first_audible(buffer.segments, 0.0, threshold=64) == 0.1


def test_first_audible_counts_negative_full_scale() -> None:
    buffer = PlayoutBuffer()
    buffer.push(0.0, _audio(0.1, level=-32768))
    assert first_audible(buffer.segments, 0.0, threshold=64) == 0.0


def test_first_audible_starts_looking_at_since() -> None:
    buffer = PlayoutBuffer()
    buffer.push(0.0, _audio(1.0))
    assert first_audible(buffer.segments, 0.5, threshold=64) == 0.5


def test_cleared_audio_is_never_audible() -> None:
    buffer = PlayoutBuffer()
    buffer.push(0.0, _audio(0.1, level=0))
    buffer.push(0.0, _audio(0.5))
    buffer.clear(0.05)
    assert first_audible(buffer.segments, 0.0, threshold=64) is None


def test_last_audible_is_the_end_of_the_last_loud_sample_started_by_until() -> None:
    buffer = PlayoutBuffer()
    buffer.push(0.0, np.concatenate([_audio(0.5), _audio(0.5, level=0)]))
    assert last_audible(buffer.segments, 0.9, threshold=64) == 0.5
    assert last_audible(buffer.segments, 0.25, threshold=64) == 0.25 + 1 / 8000


def test_a_sound_heard_now_is_not_yet_followed_by_silence() -> None:
    buffer = PlayoutBuffer()
    buffer.push(0.0, _audio(0.2))
    buffer.push(1.0, _audio(0.2))
    heard = first_audible(buffer.segments, 0.5, threshold=64)
    assert heard == 1.0
    last = last_audible(buffer.segments, heard, threshold=64)
    assert last is not None and last > heard
