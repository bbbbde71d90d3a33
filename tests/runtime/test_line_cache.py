import numpy as np
import pytest

from voxline.audio.pcm import Pcm16
from voxline.runtime.line_cache import LineCache, VoiceLines


def pcm(samples: int) -> Pcm16:
    return np.ones(samples, dtype=np.int16)


def test_lines_are_kept_per_voice_text_and_rate() -> None:
    cache = LineCache()
    cache.put("voice-a", "Hello.", 8000, pcm(10))
    assert cache.get("voice-a", "Hello.", 8000) is not None
    assert cache.get("voice-b", "Hello.", 8000) is None
    assert cache.get("voice-a", "Hello.", 16000) is None


def test_cached_audio_is_a_read_only_copy() -> None:
    cache = LineCache()
    original = pcm(10)
    cache.put("v", "Hi.", 8000, original)
    original[:] = 0
    cached = cache.get("v", "Hi.", 8000)
    assert cached is not None and cached.sum() == 10
    with pytest.raises(ValueError):
        cached[0] = 5


def test_the_least_recently_used_line_is_evicted_past_the_budget() -> None:
    cache = LineCache(max_bytes=100)
    cache.put("v", "one", 8000, pcm(20))
    cache.put("v", "two", 8000, pcm(20))
    cache.get("v", "one", 8000)
    cache.put("v", "three", 8000, pcm(20))
    assert cache.get("v", "two", 8000) is None
    assert cache.get("v", "one", 8000) is not None
    assert len(cache) == 2


def test_a_line_larger_than_the_budget_is_not_kept() -> None:
    cache = LineCache(max_bytes=10)
    cache.put("v", "long", 8000, pcm(100))
    assert len(cache) == 0


def test_a_line_cache_fixes_voice_and_rate() -> None:
    cache = LineCache()
    lines = VoiceLines(cache, "voice", 8000)
    lines.put("Hi.", pcm(4))
    assert cache.get("voice", "Hi.", 8000) is not None
    assert lines.get("Hi.") is not None
