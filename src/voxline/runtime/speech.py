"""One agent message spoken clause by clause: TTS -> resample -> playout, pipelined.

Two tasks work through the clauses: the synthesizer renders clause n+1 while the player
plays clause n (and goes no further ahead), and the player holds all audio until `gate` is
set, which is how a speculative response is prepared but not heard. Fixed lines (greeting,
filler, apology...) come from the line cache when present, and are kept there once rendered.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from voxline.audio.pcm import Pcm16
from voxline.audio.resample import StreamResampler
from voxline.providers.base import (
    ContinuingTtsSession,
    ProviderError,
    TtsSession,
)
from voxline.runtime.heard import ClauseSpan
from voxline.runtime.line_cache import VoiceLines
from voxline.runtime.playout import Playout, Utterance

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Clause:
    """Text to speak; `fixed` lines are cached by text; `round` is the caller's tag."""

    text: str
    fixed: bool = False
    round: int = 0


@dataclass(slots=True)
class _Drain:
    done: asyncio.Future[None]


@dataclass(slots=True)
class _ClauseAudio:
    clause: Clause
    chunks: asyncio.Queue[Pcm16 | Exception | None]
    rendered: int = 0
    """Samples synthesized so far (TTS runs ahead of playout)."""
    span: ClauseSpan | None = None
    """Its span in the utterance, once it started playing."""

    def add(self, pcm: Pcm16) -> None:
        if not pcm.shape[0]:
            return
        self.rendered += pcm.shape[0]
        # A clause's span covers all its audio, sent or not: that is what heard words
        # are interpolated over.
        if self.span is not None:
            self.span.end = self.span.start + self.rendered
        self.chunks.put_nowait(pcm)


class Speech:
    """Say clauses with `say`, then `end()`; `run()` returns once all of them were played
    (their last mark echoed) and raises `ProviderError` if synthesis fails. `on_clause` is
    called with each clause and its span as it starts to be heard (its first audio is about
    to be sent)."""

    def __init__(
        self,
        utterance: Utterance,
        playout: Playout,
        *,
        tts: Callable[[], Awaitable[TtsSession]],
        lines: VoiceLines,
        gate: asyncio.Event,
        clock: Callable[[], float],
        on_clause: Callable[[Clause, ClauseSpan], None],
    ) -> None:
        self.utterance = utterance
        self._playout = playout
        self._tts = tts
        self._lines = lines
        self._gate = gate
        self._clock = clock
        self._on_clause = on_clause
        self._clauses: asyncio.Queue[Clause | _Drain | None] = asyncio.Queue()
        self._audio: asyncio.Queue[_ClauseAudio | _Drain | None] = asyncio.Queue(maxsize=1)
        self.tts_start: float | None = None
        """When the first clause went to TTS (clock)."""
        self.tts_first_byte: float | None = None
        """When the first clause's first audio came back (clock)."""
        self._context = f"msg-{secrets.token_hex(6)}"
        """Engines that carry prosody across clauses get one context per message."""
        self._continued: ContinuingTtsSession | None = None

    def say(self, clause: Clause) -> None:
        """Queue a clause."""
        self._clauses.put_nowait(clause)

    def end(self) -> None:
        """No more clauses."""
        self._clauses.put_nowait(None)

    async def drain(self) -> None:
        """Wait until every clause queued so far has been played."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._clauses.put_nowait(_Drain(done))
        await done

    async def run(self) -> None:
        synthesizer = asyncio.ensure_future(self._synthesize())
        try:
            await self._play()
        finally:
            synthesizer.cancel()
            await asyncio.wait([synthesizer])

    async def _synthesize(self) -> None:
        while True:
            item = await self._clauses.get()
            if not isinstance(item, Clause):
                await self._audio.put(item)
                if item is None:
                    await self._end_context()
                    return
                continue
            audio = _ClauseAudio(item, asyncio.Queue())
            await self._audio.put(audio)
            try:
                await self._render(audio)
            except Exception as exc:
                audio.chunks.put_nowait(exc)
                return

    async def _render(self, audio: _ClauseAudio) -> None:
        clause = audio.clause
        first = self.tts_start is None
        cached = self._lines.get(clause.text) if clause.fixed else None
        if cached is not None:
            if first:
                self.tts_start = self.tts_first_byte = self._clock()
            audio.add(cached)
            audio.chunks.put_nowait(None)
            return
        tts = await self._tts()
        resampler = StreamResampler(tts.sample_rate, self._lines.rate)
        kept: list[Pcm16] | None = [] if clause.fixed else None
        if first:
            self.tts_start = self._clock()
        if isinstance(tts, ContinuingTtsSession) and not clause.fixed:
            self._continued = tts
            stream = tts.synthesize(clause.text, context=self._context)
        else:
            stream = tts.synthesize(clause.text)
        try:
            async for pcm in stream:
                if first and self.tts_first_byte is None:
                    self.tts_first_byte = self._clock()
                out = resampler.process(pcm)
                audio.add(out)
                if kept is not None:
                    kept.append(out)
        finally:
            await aclose(stream)
        tail = resampler.flush()
        audio.add(tail)
        audio.chunks.put_nowait(None)
        if kept is not None:
            kept.append(tail)
            self._lines.put(clause.text, np.concatenate(kept))

    async def _end_context(self) -> None:
        if self._continued is not None:
            try:
                await self._continued.end_context(self._context)
            except ProviderError as exc:
                # The message's audio is complete; a failed close only loses the engine's cleanup.
                logger.debug("ending the synthesis context failed: %s", exc)

    async def _play(self) -> None:
        while (item := await self._audio.get()) is not None:
            await self._gate.wait()
            if isinstance(item, _Drain):
                await self._playout.wait_played(self.utterance)
                if not item.done.done():
                    item.done.set_result(None)
                continue
            while (chunk := await item.chunks.get()) is not None:
                if isinstance(chunk, Exception):
                    raise ProviderError(f"speech synthesis failed: {chunk}") from chunk
                if item.span is None:
                    self._begin(item)
                await self._playout.write(self.utterance, chunk)
            if item.span is None:
                self._begin(item)
        await self._playout.wait_played(self.utterance)

    def _begin(self, audio: _ClauseAudio) -> None:
        audio.span = self.utterance.begin_clause(audio.clause.text, audio.rendered)
        self._on_clause(audio.clause, audio.span)


async def aclose(iterator: AsyncIterator[object]) -> None:
    """Close an async iterator that can be closed (async generators), so a cancelled stream
    stops its producer at once."""
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()


async def synthesize_line(tts: TtsSession, text: str, rate: int) -> Pcm16:
    """All of `text` synthesized and resampled to `rate` (for caching fixed lines)."""
    resampler = StreamResampler(tts.sample_rate, rate)
    parts: list[Pcm16] = []
    stream = tts.synthesize(text)
    try:
        async for pcm in stream:
            parts.append(resampler.process(pcm))
    finally:
        await aclose(stream)
    parts.append(resampler.flush())
    return np.concatenate(parts)
