from pathlib import Path

import numpy as np
import pytest

from tests.helpers import speech

pytestmark = pytest.mark.models

TEXT = "Can you hear me?"


def test_speech_is_the_same_sentence_at_every_rate() -> None:
    at_8k = speech.synthesize_speech(TEXT, 8000)
    at_16k = speech.synthesize_speech(TEXT, 16000)
    assert at_8k.dtype == at_16k.dtype == np.int16
    assert abs(at_8k.size / 8000 - at_16k.size / 16000) < 0.001
    assert np.abs(at_16k).max() > 10_000


def test_fresh_synthesis_is_identical_to_the_cached_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = speech.synthesize_speech(TEXT, 16000)
    monkeypatch.setattr(speech, "CACHE_DIR", tmp_path)
    speech._cached_speech.cache_clear()
    fresh = speech.synthesize_speech(TEXT, 16000)
    speech._cached_speech.cache_clear()
    assert list(tmp_path.glob("*.wav"))
    np.testing.assert_array_equal(fresh, cached)
