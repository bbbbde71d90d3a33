"""Speech recognition fallback: an ordered list of recognizers standing in for one.

A recognizer hears the whole call, so a failing one is abandoned for good. The session keeps
the current segment's audio (everything sent since the last finalize); when the active
recognizer errors, or its finalize outlasts its timeout, the next one opens, gets that audio
again and answers the finalize. Later segments go to it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import AsyncIterator, Sequence

from voxline.audio.pcm import Pcm16
from voxline.audio.resample import StreamResampler
from voxline.providers.base import (
    PeekingSttSession,
    ProviderError,
    RateSelectableStt,
    SpeechToText,
    SttSession,
    Transcript,
)
from voxline.providers.circuits import CIRCUITS, Circuits
from voxline.providers.fallback import Chain, Member, aclose_stream, member_labels

logger = logging.getLogger(__name__)

MAX_REPLAY_S = 120
"""The most of a segment kept for replay; a longer monologue replays only its end."""
_ABANDON_S = 2.0
"""How long closing an abandoned recognizer may take before the call moves on without it."""


class FallbackSpeechToText:
    """A SpeechToText over `recognizers` in order of preference (see the module), each given at
    most its `finalize_timeouts_s` to answer a finalize. Sessions run at one rate, the
    primary's (any of its `sample_rates`); a member that cannot take it gets resampled audio."""

    def __init__(
        self,
        recognizers: Sequence[SpeechToText],
        finalize_timeouts_s: Sequence[float],
        *,
        circuits: Circuits = CIRCUITS,
    ) -> None:
        if not recognizers:
            raise ValueError("a fallback chain needs at least one recognizer")
        if len(finalize_timeouts_s) != len(recognizers):
            raise ValueError("give one finalize timeout per recognizer")
        if any(timeout <= 0 for timeout in finalize_timeouts_s):
            raise ValueError(f"finalize timeouts must be positive, got {finalize_timeouts_s}")
        self.recognizers = tuple(recognizers)
        self.finalize_timeouts_s = tuple(finalize_timeouts_s)
        self._circuits = circuits
        primary = self.recognizers[0]
        self.name = " > ".join(stt.name for stt in self.recognizers)
        self.sample_rate = primary.sample_rate
        self.sample_rates = (
            primary.sample_rates
            if isinstance(primary, RateSelectableStt)
            else (primary.sample_rate,)
        )

    async def open(self, sample_rate: int | None = None) -> FallbackSttSession:
        rate = self.sample_rate if sample_rate is None else sample_rate
        if rate not in self.sample_rates:
            raise ValueError(f"this recognizer takes {self.sample_rates} Hz, not {rate}")
        labels = member_labels([stt.name for stt in self.recognizers])
        members = [
            Member(
                label,
                functools.partial(_open_stt_at, stt, rate),
                provider=stt.name,
                circuit=self._circuits.of(stt),
            )
            for label, stt in zip(labels, self.recognizers, strict=True)
        ]
        timeouts = dict(zip(labels, self.finalize_timeouts_s, strict=True))
        # A recognizer whose circuit is open (it failed in a recent call) hears this one last.
        members.sort(key=lambda member: member.circuit.open)
        chain = Chain[_ResampledStt]("speech recognizer", members)
        await chain.open_first()
        ordered = [timeouts[member.label] for member in chain.members]
        return FallbackSttSession(chain, ordered, rate)


class _ResampledStt:
    """A member's session fed at the chain's rate, resampled when it runs at another."""

    def __init__(self, session: SttSession, session_rate: int, rate: int) -> None:
        self.session = session
        self._resampler = StreamResampler(rate, session_rate)

    async def send(self, pcm: Pcm16) -> None:
        out = self._resampler.process(pcm)
        if out.size:
            await self.session.send(out)

    async def finalize(self) -> str:
        tail = self._resampler.flush()
        if tail.size:
            await self.session.send(tail)
        return await self.session.finalize()

    async def aclose(self) -> None:
        await self.session.aclose()


async def _open_stt_at(stt: SpeechToText, rate: int) -> _ResampledStt:
    if isinstance(stt, RateSelectableStt) and rate in stt.sample_rates:
        return _ResampledStt(await stt.open(sample_rate=rate), rate, rate)
    return _ResampledStt(await stt.open(), stt.sample_rate, rate)


class FallbackSttSession:
    """One call's recognizer with fallback: SttSession over the chain's active member, taking
    audio at `sample_rate`. Raises ProviderError once every member has failed."""

    def __init__(
        self, chain: Chain[_ResampledStt], finalize_timeouts_s: Sequence[float], sample_rate: int
    ) -> None:
        self._chain = chain
        self._timeouts_s = tuple(finalize_timeouts_s)
        self.sample_rate = sample_rate
        self._position = next(
            index for index, member in enumerate(chain.members) if member.opened is not None
        )
        self._segment: deque[Pcm16] = deque()
        self._segment_samples = 0
        self._failures: list[str] = []
        self._switched = asyncio.Event()
        self._closed = False

    async def send(self, pcm: Pcm16) -> None:
        self._keep(pcm)
        session = await self._active()
        try:
            await session.send(pcm)
        except Exception as exc:
            # A recognizer that raises anything has failed: the next one hears the segment.
            await self._fail_over(f"sending audio failed: {exc}")
            await self._active()

    async def finalize(self) -> str:
        """The segment's text from the first member that answers it in time."""
        while True:
            session = await self._active()
            try:
                async with asyncio.timeout(self._timeouts_s[self._position]):
                    text = await session.finalize()
            except TimeoutError:
                await self._fail_over(f"no result within {self._timeouts_s[self._position]} s")
                continue
            except Exception as exc:
                await self._fail_over(f"finalize failed: {exc}")
                continue
            self._segment.clear()
            self._segment_samples = 0
            return text

    async def peek(self) -> str:
        """The active member's peek ("" when it cannot peek or the peek fails: a peek is
        only a hint, and its failure is left for the next finalize to find)."""
        session = (await self._active()).session
        if not isinstance(session, PeekingSttSession):
            return ""
        try:
            return await session.peek()
        except Exception as exc:
            logger.debug("peek failed: %s", exc)
            return ""

    async def interim(self) -> AsyncIterator[Transcript]:
        """The active member's interim results; after a fail-over, the next member's."""
        while not self._closed and self._position < len(self._chain.members):
            switched = self._switched
            member = self._chain.members[self._position].opened
            if member is not None:
                stream = member.session.interim()
                try:
                    async for transcript in stream:
                        if switched.is_set():
                            break
                        yield transcript
                except Exception as exc:
                    logger.debug("interim results of a recognizer stopped: %s", exc)
                finally:
                    await aclose_stream(stream)
            await switched.wait()

    async def aclose(self) -> None:
        self._closed = True
        self._switched.set()
        await self._chain.aclose()

    async def _active(self) -> _ResampledStt:
        """The member hearing the call; ProviderError once every one has failed."""
        while self._position < len(self._chain.members):
            try:
                return await self._chain.members[self._position].session()
            except ProviderError as exc:
                await self._fail_over(f"could not open: {exc}")
        raise ProviderError(f"every speech recognizer failed: {'; '.join(self._failures)}")

    def _keep(self, pcm: Pcm16) -> None:
        self._segment.append(pcm)
        self._segment_samples += pcm.shape[0]
        limit = MAX_REPLAY_S * self.sample_rate
        while self._segment_samples - self._segment[0].shape[0] >= limit:
            self._segment_samples -= self._segment.popleft().shape[0]

    async def _fail_over(self, reason: str) -> None:
        """Abandon the active member and bring the next one that takes the segment's audio
        up to date; past the last member the session has failed (see `_active`)."""
        while self._position < len(self._chain.members):
            member = self._chain.members[self._position]
            self._failures.append(f"{member.label}: {reason}")
            self._position += 1
            self._chain.failed(member, falling_back=self._position < len(self._chain.members))
            self._switched.set()
            self._switched = asyncio.Event()
            try:
                async with asyncio.timeout(_ABANDON_S):
                    await member.aclose()
            except TimeoutError:
                logger.warning("the abandoned %s did not close in time", member.label)
            if self._position >= len(self._chain.members):
                logger.warning("speech recognizer %s failed, none left: %s", member.label, reason)
                return
            following = self._chain.members[self._position]
            logger.warning(
                "speech recognizer %s failed (%s), switching to %s",
                member.label,
                reason,
                following.label,
            )
            try:
                async with asyncio.timeout(self._timeouts_s[self._position]):
                    session = await following.session()
                    for pcm in self._segment:
                        await session.send(pcm)
            except Exception as exc:
                reason = f"could not take over: {exc}"
                continue
            return
