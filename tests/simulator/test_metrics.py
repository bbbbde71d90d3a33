import wave
from pathlib import Path

import numpy as np
import pytest

from voxline.audio.pcm import Pcm16
from voxline.simulator.caller import FRAME_SAMPLES, CallerAudio
from voxline.simulator.metrics import (
    CallerUtterance,
    agent_track,
    playout_gaps,
    turns,
    write_stereo_wav,
)
from voxline.simulator.playout import PlayoutBuffer


def _tone(seconds: float, level: int = 1000) -> Pcm16:
    return np.full(round(seconds * 8000), level, dtype=np.int16)


def _utterance(start: float, end: float) -> CallerUtterance:
    utterance = CallerUtterance(samples=round((end - start) * 8000), queued_at=start)
    utterance.mark_started(start)
    utterance.mark_ended(end)
    return utterance


def test_turn_latency_runs_from_caller_end_to_first_agent_audio() -> None:
    buffer = PlayoutBuffer()
    buffer.push(2.6, _tone(0.5))
    (turn,) = turns([_utterance(1.0, 2.0)], buffer.segments, threshold=64)
    assert turn.agent_audio_at == 2.6
    assert turn.latency is not None and abs(turn.latency - 0.6) < 1e-9
    assert not turn.overlapped


def test_turn_without_an_answer_before_the_next_utterance_has_no_latency() -> None:
    buffer = PlayoutBuffer()
    buffer.push(3.5, _tone(0.5))
    first, second = turns([_utterance(1.0, 2.0), _utterance(3.0, 4.0)], buffer.segments, 64)
    assert first.latency is None
    assert second.agent_audio_at is None


def test_turn_is_overlapped_when_the_agent_was_talking_as_the_caller_stopped() -> None:
    buffer = PlayoutBuffer()
    buffer.push(0.0, _tone(3.0))
    (turn,) = turns([_utterance(1.0, 2.0)], buffer.segments, threshold=64)
    assert turn.overlapped


def test_utterance_not_yet_sent_has_no_turn() -> None:
    pending = CallerUtterance(samples=800, queued_at=0.0)
    assert turns([pending], [], threshold=64) == []


def test_gap_inside_one_answer_is_an_underrun() -> None:
    buffer = PlayoutBuffer()
    buffer.push(1.0, _tone(0.2))
    buffer.push(1.5, _tone(0.2))
    (gap,) = playout_gaps(buffer.segments, [], [], min_gap=0.001)
    assert (gap.start, gap.end) == (1.2, 1.5)


def test_gap_around_a_caller_utterance_is_not_an_underrun() -> None:
    buffer = PlayoutBuffer()
    buffer.push(1.0, _tone(0.2))
    buffer.push(3.0, _tone(0.2))
    assert playout_gaps(buffer.segments, [_utterance(1.5, 2.5)], [], min_gap=0.001) == []


def test_gap_before_an_answer_given_while_the_caller_still_speaks_is_not_an_underrun() -> None:
    buffer = PlayoutBuffer()
    buffer.push(0.0, _tone(1.0))
    buffer.push(2.9, _tone(0.5))
    still_speaking = _utterance(2.0, 3.0)
    assert playout_gaps(buffer.segments, [still_speaking], [], min_gap=0.001) == []


def test_gap_after_a_clear_is_not_an_underrun() -> None:
    buffer = PlayoutBuffer()
    buffer.push(1.0, _tone(0.5))
    buffer.clear(1.2)
    buffer.push(1.6, _tone(0.2))
    assert playout_gaps(buffer.segments, [], [1.2], min_gap=0.001) == []


def test_back_to_back_audio_has_no_gap() -> None:
    buffer = PlayoutBuffer()
    for _ in range(5):
        buffer.push(1.0, _tone(0.02))
    assert playout_gaps(buffer.segments, [], [], min_gap=0.001) == []


def test_agent_track_places_heard_audio_at_its_play_time() -> None:
    buffer = PlayoutBuffer()
    buffer.push(0.5, _tone(0.25))
    buffer.push(0.5, _tone(0.25, level=2000))
    buffer.clear(0.875)
    track = agent_track(buffer.segments)
    assert len(track) == 7000
    assert not track[:4000].any()
    assert (track[4000:6000] == 1000).all()
    assert (track[6000:7000] == 2000).all()


def test_caller_frames_carry_queued_audio_then_silence() -> None:
    caller = CallerAudio()
    utterance = caller.queue(_tone(0.03), now=0.0)
    first = caller.next_frame(sent_at=0.02)
    second = caller.next_frame(sent_at=0.04)
    assert first is not None and (first == 1000).all()
    assert second is not None
    assert (second[:80] == 1000).all() and not second[80:].any()
    assert caller.next_frame(sent_at=0.06) is None
    assert (utterance.started_at, utterance.ended_at) == (0.02, 0.04)


def test_one_frame_can_end_an_utterance_and_start_the_next() -> None:
    caller = CallerAudio()
    first = caller.queue(_tone(0.01), now=0.0)
    second = caller.queue(_tone(0.02, level=-500), now=0.0)
    frame = caller.next_frame(sent_at=0.02)
    assert frame is not None and len(frame) == FRAME_SAMPLES
    assert (frame[:80] == 1000).all() and (frame[80:] == -500).all()
    assert first.ended_at == 0.02 and second.started_at == 0.02
    assert second.ended_at is None


def test_caller_audio_must_be_int16_mono() -> None:
    with pytest.raises(ValueError, match="1-D int16"):
        CallerAudio().queue(np.zeros((10, 2), dtype=np.int16), now=0.0)


def test_stereo_wav_has_caller_left_and_agent_right(tmp_path: Path) -> None:
    path = tmp_path / "call.wav"
    write_stereo_wav(path, _tone(0.1, 100), _tone(0.2, -200))
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getnframes()) == (2, 8000, 1600)
        frames = np.frombuffer(wav.readframes(1600), dtype="<i2").reshape(-1, 2)
    assert (frames[:800, 0] == 100).all() and not frames[800:, 0].any()
    assert (frames[:, 1] == -200).all()
