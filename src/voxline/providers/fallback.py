"""Provider fallback: an ordered list of providers standing in for one.

Each request (an LLM reply, a TTS clause) goes to the first provider; if it fails
(`ProviderError`, which includes a cloud provider's first-token timeout) before producing
anything, it is abandoned (closed) and the same request goes to the next. Once a provider
has produced output, its failure is final: restarting would make the caller hear a repeat,
so the error goes to the runtime, which apologizes. Every request starts again from the
first provider.

A member's session opens when first needed (the first member's on `open()`); a member that
cannot open is skipped for the rest of the call.

Speech recognition is different: a recognizer hears the whole call, so a failing one is
abandoned for good. The session keeps the current segment's audio (everything sent since the
last finalize); when the active recognizer errors, or its finalize outlasts its timeout, the
next one opens, gets that audio again and answers the finalize. Later segments go to it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from typing import Generic, Protocol, TypeVar

from voxline.audio.pcm import Pcm16
from voxline.audio.resample import StreamResampler
from voxline.providers.base import (
    ContinuingTtsSession,
    LanguageModel,
    LlmEvent,
    LlmRequest,
    LlmSession,
    ProviderError,
    RateSelectableStt,
    RateSelectableTts,
    SpeechToText,
    SttSession,
    TextToSpeech,
    Transcript,
    TtsSession,
)

logger = logging.getLogger(__name__)

MAX_REPLAY_S = 120
"""The most of a segment kept for replay; a longer monologue replays only its end."""
_ABANDON_S = 2.0
"""How long closing an abandoned recognizer may take before the call moves on without it."""


class _Session(Protocol):
    async def aclose(self) -> None: ...


S = TypeVar("S", bound=_Session)
T = TypeVar("T")


class _Member(Generic[S]):
    """One provider of a chain and, once opened, this call's session of it."""

    def __init__(self, label: str, open_: Callable[[], Awaitable[S]]) -> None:
        self.label = label
        self._open = open_
        self._session: S | None = None
        self._failure: str | None = None

    async def session(self) -> S:
        """This call's session, opened on first use; ProviderError if it cannot open."""
        if self._session is not None:
            return self._session
        if self._failure is not None:
            raise ProviderError(self._failure)
        try:
            self._session = await self._open()
        except ProviderError as exc:
            self._failure = str(exc)
            raise
        except Exception as exc:
            self._failure = f"could not open: {exc}"
            raise ProviderError(self._failure) from exc
        return self._session

    @property
    def opened(self) -> S | None:
        """The session, if it has been opened."""
        return self._session

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        try:
            await session.aclose()
        except Exception as exc:
            logger.warning("closing the %s session failed: %s", self.label, exc)


# A member that failed or stalled is passed over for this long, so that a provider that is
# down costs its timeout once per call, not on every turn.
COOLDOWN_S = 30.0


class _Chain(Generic[S]):
    """The members of one call's fallback chain, in order of preference."""

    def __init__(
        self, kind: str, members: Sequence[_Member[S]], *, cooldown_s: float = COOLDOWN_S
    ) -> None:
        self.kind = kind
        self.members = tuple(members)
        self._cooldown_s = cooldown_s
        self._resting_until: dict[int, float] = {}
        """Members that failed before their first output sit out until then."""

    def _in_turn(self) -> list[tuple[int, _Member[S]]]:
        """Members in order of preference, those resting after a recent failure last (still
        tried when every other one fails)."""
        now = time.monotonic()
        order = list(enumerate(self.members))
        return sorted(order, key=lambda pair: self._resting_until.get(pair[0], 0.0) > now)

    async def open_first(self) -> None:
        """Open the first member that can be opened; ProviderError if none can."""
        failures = []
        for member in self.members:
            try:
                await member.session()
                return
            except ProviderError as exc:
                logger.warning("%s %s could not open: %s", self.kind, member.label, exc)
                failures.append(f"{member.label}: {exc}")
        raise ProviderError(f"no {self.kind} could open: {'; '.join(failures)}")

    async def first_that_starts(
        self, start: Callable[[S], AsyncIterator[T]]
    ) -> AsyncGenerator[T, None]:
        """Yield the items of `start(session)` from the first member whose stream yields
        before failing; a failure after the first item is raised as is."""
        failures = []
        members = self._in_turn()
        for attempt, (index, member) in enumerate(members):
            try:
                session = await member.session()
            except ProviderError as exc:
                failures.append(f"{member.label}: {exc}")
                continue
            stream = start(session)
            started = False
            try:
                async for item in stream:
                    if not started:
                        started = True
                        self._resting_until.pop(index, None)
                    yield item
                return
            except ProviderError as exc:
                if started:
                    raise
                self._resting_until[index] = time.monotonic() + self._cooldown_s
                failures.append(f"{member.label}: {exc}")
                if attempt + 1 < len(members):
                    logger.warning(
                        "%s %s failed before its first output, trying the next: %s",
                        self.kind,
                        member.label,
                        exc,
                    )
            finally:
                await _aclose(stream)
        raise ProviderError(f"every {self.kind} failed: {'; '.join(failures)}")

    async def aclose(self) -> None:
        for member in self.members:
            await member.aclose()


def _labels(names: Sequence[str]) -> list[str]:
    """'openai', 'anthropic', ... numbered by position, so repeats stay apart in logs."""
    return [f"#{index + 1} ({name})" for index, name in enumerate(names)]


class FallbackLanguageModel:
    """A LanguageModel answering with the first of `models` that replies (see the module)."""

    def __init__(self, models: Sequence[LanguageModel], *, cooldown_s: float = COOLDOWN_S) -> None:
        if not models:
            raise ValueError("a fallback chain needs at least one language model")
        self.models = tuple(models)
        self.name = " > ".join(model.name for model in self.models)
        self._cooldown_s = cooldown_s

    async def open(self) -> FallbackLlmSession:
        labels = _labels([model.name for model in self.models])
        chain = _Chain[LlmSession](
            "language model",
            [_Member(label, model.open) for label, model in zip(labels, self.models, strict=True)],
            cooldown_s=self._cooldown_s,
        )
        await chain.open_first()
        return FallbackLlmSession(chain)


class FallbackLlmSession:
    """One call's chain of LLM sessions; `stream` as LlmSession.stream, with fallback."""

    def __init__(self, chain: _Chain[LlmSession]) -> None:
        self._chain = chain

    def stream(self, request: LlmRequest) -> AsyncGenerator[LlmEvent, None]:
        return self._chain.first_that_starts(lambda session: session.stream(request))

    async def aclose(self) -> None:
        await self._chain.aclose()


class FallbackTextToSpeech:
    """A TextToSpeech speaking each clause with the first of `synthesizers` that produces
    audio (see the module). Its sessions run at one rate, the primary's (any of its
    `sample_rates`); a member that cannot produce that rate is resampled to it."""

    def __init__(self, synthesizers: Sequence[TextToSpeech]) -> None:
        if not synthesizers:
            raise ValueError("a fallback chain needs at least one synthesizer")
        self.synthesizers = tuple(synthesizers)
        primary = self.synthesizers[0]
        self.name = " > ".join(tts.name for tts in self.synthesizers)
        self.sample_rate = primary.sample_rate
        self.sample_rates = (
            primary.sample_rates
            if isinstance(primary, RateSelectableTts)
            else (primary.sample_rate,)
        )

    async def open(self, sample_rate: int | None = None) -> FallbackTtsSession:
        rate = self.sample_rate if sample_rate is None else sample_rate
        if rate not in self.sample_rates:
            raise ValueError(f"this synthesizer produces {self.sample_rates} Hz, not {rate}")
        labels = _labels([tts.name for tts in self.synthesizers])
        chain = _Chain[TtsSession](
            "speech synthesizer",
            [
                _Member(label, functools.partial(_open_at, tts, rate))
                for label, tts in zip(labels, self.synthesizers, strict=True)
            ],
        )
        await chain.open_first()
        return FallbackTtsSession(chain, rate)


async def _open_at(tts: TextToSpeech, rate: int) -> TtsSession:
    if isinstance(tts, RateSelectableTts) and rate in tts.sample_rates:
        return await tts.open(sample_rate=rate)
    return await tts.open()


class FallbackTtsSession:
    """One call's chain of TTS sessions: TtsSession (and ContinuingTtsSession: a `context`
    reaches the members that keep contexts) with fallback, all audio at `sample_rate`."""

    def __init__(self, chain: _Chain[TtsSession], sample_rate: int) -> None:
        self._chain = chain
        self.sample_rate = sample_rate

    def synthesize(self, text: str, *, context: str | None = None) -> AsyncGenerator[Pcm16, None]:
        return self._chain.first_that_starts(lambda session: self._audio(session, text, context))

    async def end_context(self, context: str) -> None:
        for member in self._chain.members:
            session = member.opened
            if isinstance(session, ContinuingTtsSession):
                try:
                    await session.end_context(context)
                except ProviderError as exc:
                    logger.warning("ending a context of %s failed: %s", member.label, exc)

    async def aclose(self) -> None:
        await self._chain.aclose()

    async def _audio(
        self, session: TtsSession, text: str, context: str | None
    ) -> AsyncGenerator[Pcm16, None]:
        if context is not None and isinstance(session, ContinuingTtsSession):
            stream = session.synthesize(text, context=context)
        else:
            stream = session.synthesize(text)
        resampler = StreamResampler(session.sample_rate, self.sample_rate)
        try:
            async for pcm in stream:
                out = resampler.process(pcm)
                if out.size:
                    yield out
        finally:
            await _aclose(stream)
        tail = resampler.flush()
        if tail.size:
            yield tail


async def _aclose(stream: AsyncIterator[object]) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()


class FallbackSpeechToText:
    """A SpeechToText over `recognizers` in order of preference (see the module), each given at
    most its `finalize_timeouts_s` to answer a finalize. Sessions run at one rate, the
    primary's (any of its `sample_rates`); a member that cannot take it gets resampled audio."""

    def __init__(
        self, recognizers: Sequence[SpeechToText], finalize_timeouts_s: Sequence[float]
    ) -> None:
        if not recognizers:
            raise ValueError("a fallback chain needs at least one recognizer")
        if len(finalize_timeouts_s) != len(recognizers):
            raise ValueError("give one finalize timeout per recognizer")
        if any(timeout <= 0 for timeout in finalize_timeouts_s):
            raise ValueError(f"finalize timeouts must be positive, got {finalize_timeouts_s}")
        self.recognizers = tuple(recognizers)
        self.finalize_timeouts_s = tuple(finalize_timeouts_s)
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
        labels = _labels([stt.name for stt in self.recognizers])
        chain = _Chain[_ResampledStt](
            "speech recognizer",
            [
                _Member(label, functools.partial(_open_stt_at, stt, rate))
                for label, stt in zip(labels, self.recognizers, strict=True)
            ],
        )
        await chain.open_first()
        return FallbackSttSession(chain, self.finalize_timeouts_s, rate)


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
        self, chain: _Chain[_ResampledStt], finalize_timeouts_s: Sequence[float], sample_rate: int
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
                    await _aclose(stream)
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
