"""A process-wide cache of synthesized fixed lines: greetings, fillers, apologies, goodbyes.

An agent's first message is spoken on every call, so its audio is kept ready and the first
response costs no TTS. Entries are keyed by the TTS spec (as JSON), the text and the output
rate, and evicted least recently used past a byte budget.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from voxline.audio.pcm import Pcm16

DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class LineCache:
    """Thread-safe LRU map (tts spec JSON, text, rate) -> PCM16 at that rate."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self._max_bytes = max_bytes
        self._bytes = 0
        self._entries: OrderedDict[tuple[str, str, int], Pcm16] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, tts_key: str, text: str, rate: int) -> Pcm16 | None:
        """The cached audio, or None."""
        key = (tts_key, text, rate)
        with self._lock:
            pcm = self._entries.get(key)
            if pcm is not None:
                self._entries.move_to_end(key)
            return pcm

    def put(self, tts_key: str, text: str, rate: int, pcm: Pcm16) -> None:
        """Keep `pcm` (read-only from now on); entries larger than the budget are not kept."""
        if pcm.nbytes > self._max_bytes or pcm.shape[0] == 0:
            return
        pcm = pcm.copy()
        pcm.flags.writeable = False
        key = (tts_key, text, rate)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._entries[key] = pcm
            self._bytes += pcm.nbytes
            while self._bytes > self._max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.nbytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


SHARED_CACHE = LineCache()
"""The process-wide cache calls use unless given another."""


class VoiceLines:
    """The cache as one call sees it: its TTS voice and output rate fixed."""

    def __init__(self, cache: LineCache, tts_key: str, rate: int) -> None:
        self._cache = cache
        self._tts_key = tts_key
        self.rate = rate

    def get(self, text: str) -> Pcm16 | None:
        return self._cache.get(self._tts_key, text, self.rate)

    def put(self, text: str, pcm: Pcm16) -> None:
        self._cache.put(self._tts_key, text, self.rate, pcm)
