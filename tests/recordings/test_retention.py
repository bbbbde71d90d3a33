"""Retention: recordings older than the configured days are removed, newer ones kept."""

from __future__ import annotations

import os
import time
from pathlib import Path

from voxline.recordings.service import Recordings
from voxline.recordings.storage import LocalStorage, recording_key


def _recording(root: Path, session_id: str, age_days: float) -> Path:
    path = root / recording_key("ws_1", session_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"OggS")
    stamp = time.time() - age_days * 86400
    os.utime(path, (stamp, stamp))
    return path


async def test_recordings_past_retention_are_removed(tmp_path: Path) -> None:
    old = _recording(tmp_path, "sess_old", age_days=8)
    recent = _recording(tmp_path, "sess_new", age_days=6)
    recordings = Recordings(LocalStorage(tmp_path), retention_days=7)
    assert await recordings.sweep() == 1
    assert not old.exists() and recent.exists()


async def test_without_retention_nothing_is_removed(tmp_path: Path) -> None:
    old = _recording(tmp_path, "sess_old", age_days=800)
    assert await Recordings(LocalStorage(tmp_path)).sweep() == 0
    assert old.exists()
