"""The stereo timeline: caller and agent audio placed on one clock, cut at a barge-in."""

from __future__ import annotations

import numpy as np

from voxline.recordings.timeline import StereoTimeline

RATE = 1000  # one sample per millisecond keeps the arithmetic readable


def _tone(samples: int, value: int) -> np.ndarray:
    return np.full(samples, value, dtype=np.int16)


def test_caller_audio_is_laid_end_to_end_and_agent_audio_where_it_plays() -> None:
    timeline = StereoTimeline(RATE, hold_s=0.0)
    timeline.add_caller(_tone(100, 1), at_s=0.1)
    timeline.add_caller(_tone(100, 2), at_s=0.21)  # a little jitter: still end to end
    timeline.add_agent(_tone(50, 7), at_s=0.05)
    timeline.add_agent(_tone(50, 8), at_s=0.05)  # sent at once: plays after the first
    frames = timeline.release_all(0.0)
    assert frames.shape == (200, 2)
    assert (frames[:100, 0] == 1).all() and (frames[100:200, 0] == 2).all()
    assert (frames[:50, 1] == 0).all()
    assert (frames[50:100, 1] == 7).all() and (frames[100:150, 1] == 8).all()
    assert (frames[150:, 1] == 0).all()


def test_a_gap_in_the_caller_audio_is_kept_as_silence() -> None:
    timeline = StereoTimeline(RATE, hold_s=0.0)
    timeline.add_caller(_tone(100, 1), at_s=0.1)
    timeline.add_caller(_tone(100, 2), at_s=1.1)
    frames = timeline.release_all(0.0)
    assert frames.shape[0] == 1100
    assert (frames[100:1000, 0] == 0).all() and (frames[1000:, 0] == 2).all()


def test_a_clear_cuts_the_agent_audio_not_yet_played() -> None:
    timeline = StereoTimeline(RATE, hold_s=0.0)
    timeline.add_agent(_tone(500, 5), at_s=0.0)
    timeline.cut_agent(0.2)
    timeline.add_agent(_tone(100, 6), at_s=0.3)
    frames = timeline.release_all(0.0)
    assert (frames[:200, 1] == 5).all()
    assert (frames[200:300, 1] == 0).all()
    assert (frames[300:400, 1] == 6).all()


def test_the_recording_lasts_until_the_call_ends() -> None:
    timeline = StereoTimeline(RATE, hold_s=0.0)
    timeline.add_caller(_tone(100, 1), at_s=0.1)
    assert timeline.release_all(2.0).shape[0] == 2000


def test_frames_are_released_once_behind_the_clock() -> None:
    timeline = StereoTimeline(RATE, hold_s=0.1)
    timeline.add_caller(_tone(300, 1), at_s=0.3)
    assert timeline.release(0.25).shape[0] == 150
    assert timeline.release(0.25).shape[0] == 0
    # Audio that arrives for a moment already released is kept from then on.
    timeline.add_agent(_tone(100, 9), at_s=0.1)
    rest = timeline.release_all(0.0)
    assert rest.shape[0] == 150
    assert (rest[:50, 1] == 9).all() and (rest[50:, 1] == 0).all()
