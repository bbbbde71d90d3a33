"""One call's connections to its providers (each provider's per-call session: a recognizer
stream, an LLM connection, a synthesizer), opened concurrently while the greeting plays and
awaited where first needed."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

from voxline.providers.base import (
    LlmSession,
    MulawInputStt,
    ProviderError,
    ProviderSet,
    RateSelectableStt,
    RateSelectableTts,
    SpeechToText,
    SttSession,
    TextToSpeech,
    TtsSession,
)

logger = logging.getLogger(__name__)

_MULAW_RATE = 8000


class _Closable(Protocol):
    async def aclose(self) -> None: ...


S = TypeVar("S", bound=_Closable)


class _Opening(Generic[S]):
    """A connection being opened: awaited by users, closed when the call ends."""

    def __init__(self, kind: str, open_: Callable[[], Awaitable[S]]) -> None:
        self._kind = kind
        self._open = open_
        self._task: asyncio.Task[S] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._open_session())

    async def get(self) -> S:
        self.start()
        assert self._task is not None
        return await asyncio.shield(self._task)

    async def aclose(self) -> None:
        if self._task is None:
            return
        if not self._task.done():
            self._task.cancel()
        try:
            session = await self._task
        except BaseException:
            return  # it never opened: nothing to close
        try:
            await session.aclose()
        except Exception as exc:
            logger.warning("closing the %s session failed: %s", self._kind, exc)

    async def _open_session(self) -> S:
        try:
            return await self._open()
        except ProviderError:
            raise
        except Exception as exc:
            raise ProviderError(f"could not open the {self._kind} session: {exc}") from exc


class ProviderConnections:
    """`start()` begins opening all three; `stt()`, `llm()`, `tts()` wait for one (raising
    `ProviderError` if it could not open); `aclose()` closes whatever opened."""

    def __init__(
        self,
        providers: ProviderSet,
        *,
        input_rate: int | None = None,
        output_rate: int | None = None,
    ) -> None:
        self.stt_rate, self.stt_mulaw, open_stt = _stt_opener(providers.stt, input_rate)
        """`stt_mulaw`: the recognizer takes the phone line's mu-law as is (at 8 kHz)."""
        self._stt = _Opening[SttSession]("speech-to-text", open_stt)
        self._llm = _Opening[LlmSession]("language model", providers.llm.open)
        self._tts = _Opening[TtsSession]("text-to-speech", _tts_opener(providers.tts, output_rate))

    def start_tts(self) -> None:
        self._tts.start()

    def start(self) -> None:
        self._tts.start()
        self._stt.start()
        self._llm.start()

    async def stt(self) -> SttSession:
        return await self._stt.get()

    async def llm(self) -> LlmSession:
        return await self._llm.get()

    async def tts(self) -> TtsSession:
        return await self._tts.get()

    async def aclose(self) -> None:
        await asyncio.gather(self._stt.aclose(), self._llm.aclose(), self._tts.aclose())


def _stt_opener(
    stt: SpeechToText, rate: int | None
) -> tuple[int, bool, Callable[[], Awaitable[SttSession]]]:
    """The rate the recognizer will take, whether it takes mu-law, and how to open it: a
    phone call's mu-law as is when the provider can take it, else the transport's own rate
    when it can take that (no resampling), else its native rate."""
    if rate == _MULAW_RATE and isinstance(stt, MulawInputStt):
        return rate, True, stt.open_mulaw
    if rate is not None and isinstance(stt, RateSelectableStt) and rate in stt.sample_rates:
        return rate, False, functools.partial(stt.open, sample_rate=rate)
    return stt.sample_rate, False, stt.open


def _tts_opener(tts: TextToSpeech, rate: int | None) -> Callable[[], Awaitable[TtsSession]]:
    """Open the synthesizer at the transport's rate when it can produce it (no resampling)."""
    if rate is not None and isinstance(tts, RateSelectableTts) and rate in tts.sample_rates:
        return functools.partial(tts.open, sample_rate=rate)
    return tts.open
