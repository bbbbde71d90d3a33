"""The writer thread: a stereo Ogg/Opus file that grows while the call runs."""

from __future__ import annotations

import time
from pathlib import Path

import av
import numpy as np

from voxline.recordings.writer import RATE, RecordingWriter


def _tone(seconds: float, rate: int, hz: float) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * hz * t) * 8000).astype(np.int16)


def _decode(path: Path) -> tuple[np.ndarray, int]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "opus"
        assert stream.channels == 2
        frames = [frame.to_ndarray() for frame in container.decode(stream)]
        rate = stream.rate
    planar = np.concatenate(frames, axis=1)
    return planar, rate


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples.astype(np.float64)))))


def test_caller_left_agent_right_cut_at_the_clear(tmp_path: Path) -> None:
    now = [0.0]
    listened: list[bytes] = []
    path = tmp_path / "ws" / "call.ogg"
    writer = RecordingWriter(path, clock=lambda: now[0], listener=listened.append)
    caller = _tone(0.02, 8000, 300)
    for tick in range(1, 101):  # two seconds of caller audio, in real time
        now[0] = tick * 0.02
        writer.caller(caller, 8000)
        if tick == 25:
            writer.agent(_tone(1.0, 16000, 1000), 16000)  # would play until 1.5 s ...
        if tick == 50:
            writer.cut()  # ... but the caller barged in at 1.0 s
    now[0] = 3.0
    writer.close()

    audio, rate = _decode(path)
    assert rate == 48000
    duration = audio.shape[1] / rate
    assert 2.9 < duration < 3.2  # until the call ended
    left, right = audio[0], audio[1]
    tenth = rate // 10
    assert _rms(left[5 * tenth : 15 * tenth]) > 0.05
    assert _rms(right[: 4 * tenth]) < 0.01
    assert _rms(right[6 * tenth : 9 * tenth]) > 0.05
    assert _rms(right[11 * tenth : 19 * tenth]) < 0.01
    heard = sum(len(chunk) for chunk in listened) // 4
    assert abs(heard - 3 * RATE) < RATE // 10


def test_the_file_grows_while_the_call_runs(tmp_path: Path) -> None:
    path = tmp_path / "call.ogg"
    writer = RecordingWriter(path)
    try:
        chunk = _tone(0.02, 16000, 300)
        started = time.monotonic()
        deadline = started + 10
        while time.monotonic() < deadline:
            writer.caller(chunk, 16000)
            time.sleep(0.02)
            if time.monotonic() - started > 2.5 and path.stat().st_size > 4000:
                break
        assert path.stat().st_size > 4000, "pages must reach the disk during the call"
    finally:
        writer.close()
    audio, rate = _decode(path)
    assert audio.shape[1] / rate > 2.0
