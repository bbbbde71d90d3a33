"""Agent audio out: paced a little ahead of real time, with a mark after every chunk.

Pacing keeps at most `lead_ms` of audio queued at the far end, so `clear` silences the agent
at once. Every chunk is followed by a mark named `<utterance>.c<n>`; its echo proves the
chunk was played, which is how we know what the caller heard. After a `clear` the far end
echoes all pending marks at once (Twilio's media streams do, and the browser client copies
them), so those echoes are ignored: the heard position is the last mark echoed before the
clear, refined by the real-time playout estimate (which never exceeds what was sent).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from voxline.audio.pcm import Pcm16
from voxline.runtime.heard import ClauseSpan, split_heard
from voxline.runtime.transport import Transport

logger = logging.getLogger(__name__)

LEAD_MS = 200
CHUNK_MS = 60
MARK_GRACE_S = 2.0
"""A mark not echoed this long after its audio should have played counts as played:
a far end that never echoes must not hang the call."""


class PlayoutError(Exception):
    """The transport failed while sending agent audio."""


class Utterance:
    """One agent message as played: its clause spans, samples sent and samples heard."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.spans: list[ClauseSpan] = []
        self.sent = 0
        self.heard = 0
        self.cleared = False
        """True once a `clear` cut this message short."""
        self.first_audio_at: float | None = None
        self._chunks = 0
        self._progress = asyncio.Event()

    @property
    def text(self) -> str:
        """Every clause begun so far, joined."""
        return " ".join(span.text for span in self.spans)

    def begin_clause(self, text: str, samples: int) -> ClauseSpan:
        """The audio written next is the clause `text`, `samples` long as far as known yet
        (the caller extends the span's end if more of it arrives)."""
        span = ClauseSpan(text, self.sent, self.sent + samples)
        self.spans.append(span)
        return span

    def split_heard(self) -> tuple[str, str]:
        """(heard, not heard) text of the message, from the samples played."""
        return split_heard(self.spans, self.heard)

    @property
    def played(self) -> bool:
        """All audio sent so far was played (or the message was cleared)."""
        return self.cleared or self.heard >= self.sent


@dataclass(slots=True)
class _Chunk:
    utterance: Utterance
    end: int
    samples: int
    starts_at: float
    ends_at: float


class Playout:
    """Sends one call's agent audio; one message at a time is written, in order."""

    def __init__(
        self,
        transport: Transport,
        *,
        clock: Callable[[], float],
        lead_ms: int = LEAD_MS,
        chunk_ms: int = CHUNK_MS,
    ) -> None:
        if lead_ms < chunk_ms or chunk_ms <= 0:
            raise ValueError(f"need 0 < chunk_ms <= lead_ms, got {chunk_ms} and {lead_ms}")
        self._transport = transport
        self._clock = clock
        self.rate = transport.output_rate
        self._lead_s = lead_ms / 1000
        self._chunk_samples = max(1, self.rate * chunk_ms // 1000)
        self._pending: dict[str, _Chunk] = {}
        self._play_end = 0.0
        self.first_audio_at: float | None = None
        """When the call's first agent audio was sent (clock)."""
        self.audible = asyncio.Event()
        """Set once the first agent audio has been sent."""
        self.volume = 1.0
        """Gain applied to audio sent from now on (below 1 while the agent is unsure whether
        the caller is taking the turn); audio already sent keeps its level."""

    @property
    def busy(self) -> bool:
        """Agent audio was sent that has not been played yet."""
        self._expire()
        return bool(self._pending)

    async def write(self, utterance: Utterance, pcm: Pcm16) -> None:
        """Send `pcm` as part of `utterance`, chunk by chunk, waiting to stay within the lead.
        Does nothing once the utterance was cleared."""
        for start in range(0, pcm.shape[0], self._chunk_samples):
            piece = pcm[start : start + self._chunk_samples]
            duration = piece.shape[0] / self.rate
            wait = self._play_end - self._clock() + duration - self._lead_s
            if wait > 0:
                await asyncio.sleep(wait)
            if utterance.cleared:
                return
            if self.volume != 1.0:
                piece = (piece * self.volume).astype(np.int16)
            await self._send(utterance, piece, duration)

    def on_mark(self, name: str) -> None:
        """A mark echoed by the far end: its chunk (and all before it) were played."""
        chunk = self._pending.pop(name, None)
        if chunk is None:
            return  # cleared, expired or not ours
        utterance = chunk.utterance
        utterance.heard = max(utterance.heard, chunk.end)
        utterance._progress.set()

    async def clear(self) -> None:
        """Stop the agent now: drop queued audio at the far end and settle what was heard."""
        now = self._clock()
        if not self._pending and self._play_end <= now:
            return
        for chunk in self._pending.values():
            utterance = chunk.utterance
            utterance.cleared = True
            utterance._progress.set()
            played = round((now - chunk.starts_at) * self.rate)
            if played > 0:
                estimate = chunk.end - chunk.samples + min(played, chunk.samples)
                utterance.heard = max(utterance.heard, estimate)
        self._pending.clear()
        self._play_end = now
        try:
            await self._transport.clear()
        except Exception as exc:
            raise PlayoutError(f"could not clear the agent's audio: {exc}") from exc

    async def wait_played(self, utterance: Utterance) -> None:
        """Return once the last mark of what was sent for `utterance` has echoed (or it was
        cleared); a far end that stops echoing is given `MARK_GRACE_S` past the estimate."""
        while not utterance.played:
            utterance._progress.clear()
            deadline = self._play_end + MARK_GRACE_S - self._clock()
            try:
                await asyncio.wait_for(utterance._progress.wait(), max(deadline, 0.01))
            except TimeoutError:
                self._expire()

    async def _send(self, utterance: Utterance, piece: Pcm16, duration: float) -> None:
        utterance._chunks += 1
        name = f"{utterance.label}.c{utterance._chunks}"
        now = self._clock()
        starts_at = max(self._play_end, now)
        self._play_end = starts_at + duration
        utterance.sent += piece.shape[0]
        if utterance.first_audio_at is None:
            utterance.first_audio_at = now
        if self.first_audio_at is None:
            self.first_audio_at = now
            self.audible.set()
        # Registered before sending: the echo may arrive while send_mark is in flight.
        self._pending[name] = _Chunk(
            utterance, utterance.sent, piece.shape[0], starts_at, self._play_end
        )
        try:
            await self._transport.send_audio(piece)
            await self._transport.send_mark(name)
        except Exception as exc:
            raise PlayoutError(f"could not send the agent's audio: {exc}") from exc

    def _expire(self) -> None:
        if not self._pending:
            return
        now = self._clock()
        expired = [
            name for name, chunk in self._pending.items() if chunk.ends_at + MARK_GRACE_S <= now
        ]
        if not expired:
            return
        logger.warning("%d marks were never echoed; counting their audio as played", len(expired))
        for name in expired:
            self.on_mark(name)
