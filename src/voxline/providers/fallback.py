"""Provider fallback: an ordered list of providers standing in for one.

Each request (an LLM reply, a TTS clause) goes to the first provider; if it fails
(`ProviderError`, which includes a cloud provider's first-token timeout) before producing
anything, it is abandoned (closed) and the same request goes to the next. Once a provider
has produced output, its failure is final: restarting would make the caller hear a repeat,
so the error goes to the runtime, which apologizes. Every request starts again from the
first provider whose circuit is closed: a provider that failed before its first output, in
any call of the process, is tried last for a cool-down (`providers.circuits`).

A member's session opens when first needed (the first member's on `open()`); a member that
cannot open is skipped for the rest of the call.

Speech recognition is different (a recognizer hears the whole call): see `fallback_stt`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from typing import Generic, Protocol, TypeVar

from voxline.audio.pcm import Pcm16
from voxline.audio.resample import StreamResampler
from voxline.observability.metrics import PROVIDER_ERRORS, PROVIDER_FALLBACKS, PROVIDER_SKIPS
from voxline.providers.base import (
    ContinuingTtsSession,
    LanguageModel,
    LlmEvent,
    LlmRequest,
    LlmSession,
    ProviderError,
    RateSelectableTts,
    TextToSpeech,
    TtsSession,
)
from voxline.providers.circuits import CIRCUITS, Circuit, Circuits

logger = logging.getLogger(__name__)


class _Session(Protocol):
    async def aclose(self) -> None: ...


S = TypeVar("S", bound=_Session)
T = TypeVar("T")


class Member(Generic[S]):
    """One provider of a chain and, once opened, this call's session of it."""

    def __init__(
        self,
        label: str,
        open_: Callable[[], Awaitable[S]],
        *,
        provider: str = "unnamed",
        circuit: Circuit | None = None,
    ) -> None:
        self.label = label
        self.provider = provider
        """The vendor's name, for metrics."""
        self.circuit = circuit if circuit is not None else Circuit()
        """The provider's circuit, shared by the calls of the process."""
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


_ROLES = {"language model": "llm", "speech synthesizer": "tts", "speech recognizer": "stt"}


class Chain(Generic[S]):
    """The members of one call's fallback chain, in order of preference."""

    def __init__(self, kind: str, members: Sequence[Member[S]]) -> None:
        self.kind = kind
        self.role = _ROLES.get(kind, kind)
        self.members = tuple(members)

    def in_turn(self) -> list[Member[S]]:
        """Members in order of preference, those whose circuit is open (a recent failure,
        in this call or another) last: still tried when every other one fails."""
        ordered = sorted(self.members, key=lambda member: member.circuit.open)
        for member in ordered:
            if member.circuit.open:
                PROVIDER_SKIPS.labels(self.role, member.provider).inc()
        return ordered

    def failed(self, member: Member[S], *, falling_back: bool) -> None:
        """`member` failed before any output: open its circuit and count it."""
        member.circuit.trip()
        PROVIDER_ERRORS.labels(self.role, member.provider).inc()
        if falling_back:
            PROVIDER_FALLBACKS.labels(self.role, member.provider).inc()

    async def open_first(self) -> None:
        """Open the first member that can be opened; ProviderError if none can."""
        failures = []
        members = self.in_turn()
        for attempt, member in enumerate(members):
            try:
                await member.session()
                return
            except ProviderError as exc:
                self.failed(member, falling_back=attempt + 1 < len(members))
                logger.warning("%s %s could not open: %s", self.kind, member.label, exc)
                failures.append(f"{member.label}: {exc}")
        raise ProviderError(f"no {self.kind} could open: {'; '.join(failures)}")

    async def first_that_starts(
        self, start: Callable[[S], AsyncIterator[T]]
    ) -> AsyncGenerator[T, None]:
        """Yield the items of `start(session)` from the first member whose stream yields
        before failing; a failure after the first item is raised as is."""
        failures = []
        members = self.in_turn()
        for attempt, member in enumerate(members):
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
                        member.circuit.close()
                    yield item
                return
            except ProviderError as exc:
                if started:
                    raise
                self.failed(member, falling_back=attempt + 1 < len(members))
                failures.append(f"{member.label}: {exc}")
                if attempt + 1 < len(members):
                    logger.warning(
                        "%s %s failed before its first output, trying the next: %s",
                        self.kind,
                        member.label,
                        exc,
                    )
            finally:
                await aclose_stream(stream)
        raise ProviderError(f"every {self.kind} failed: {'; '.join(failures)}")

    async def aclose(self) -> None:
        for member in self.members:
            await member.aclose()


def member_labels(names: Sequence[str]) -> list[str]:
    """'openai', 'anthropic', ... numbered by position, so repeats stay apart in logs."""
    return [f"#{index + 1} ({name})" for index, name in enumerate(names)]


class FallbackLanguageModel:
    """A LanguageModel answering with the first of `models` that replies (see the module)."""

    def __init__(self, models: Sequence[LanguageModel], *, circuits: Circuits = CIRCUITS) -> None:
        if not models:
            raise ValueError("a fallback chain needs at least one language model")
        self.models = tuple(models)
        self.name = " > ".join(model.name for model in self.models)
        self._circuits = circuits

    async def open(self) -> FallbackLlmSession:
        labels = member_labels([model.name for model in self.models])
        chain = Chain[LlmSession](
            "language model",
            [
                Member(label, model.open, provider=model.name, circuit=self._circuits.of(model))
                for label, model in zip(labels, self.models, strict=True)
            ],
        )
        await chain.open_first()
        return FallbackLlmSession(chain)


class FallbackLlmSession:
    """One call's chain of LLM sessions; `stream` as LlmSession.stream, with fallback."""

    def __init__(self, chain: Chain[LlmSession]) -> None:
        self._chain = chain

    def stream(self, request: LlmRequest) -> AsyncGenerator[LlmEvent, None]:
        return self._chain.first_that_starts(lambda session: session.stream(request))

    async def aclose(self) -> None:
        await self._chain.aclose()


class FallbackTextToSpeech:
    """A TextToSpeech speaking each clause with the first of `synthesizers` that produces
    audio (see the module). Its sessions run at one rate, the primary's (any of its
    `sample_rates`); a member that cannot produce that rate is resampled to it."""

    def __init__(
        self, synthesizers: Sequence[TextToSpeech], *, circuits: Circuits = CIRCUITS
    ) -> None:
        if not synthesizers:
            raise ValueError("a fallback chain needs at least one synthesizer")
        self.synthesizers = tuple(synthesizers)
        primary = self.synthesizers[0]
        self.name = " > ".join(tts.name for tts in self.synthesizers)
        self._circuits = circuits
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
        labels = member_labels([tts.name for tts in self.synthesizers])
        chain = Chain[TtsSession](
            "speech synthesizer",
            [
                Member(
                    label,
                    functools.partial(_open_at, tts, rate),
                    provider=tts.name,
                    circuit=self._circuits.of(tts),
                )
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

    def __init__(self, chain: Chain[TtsSession], sample_rate: int) -> None:
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
            await aclose_stream(stream)
        tail = resampler.flush()
        if tail.size:
            yield tail


async def aclose_stream(stream: AsyncIterator[object]) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()
