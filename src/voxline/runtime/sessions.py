"""One call's provider sessions, opened concurrently (while the greeting plays) and awaited
where first needed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

from voxline.providers.base import (
    LlmSession,
    ProviderError,
    ProviderSet,
    SttSession,
    TtsSession,
)

logger = logging.getLogger(__name__)


class _Closable(Protocol):
    async def aclose(self) -> None: ...


S = TypeVar("S", bound=_Closable)


class _Opening(Generic[S]):
    """A session being opened: awaited by users, closed when the call ends."""

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


class CallSessions:
    """`start()` begins opening all three; `stt()`, `llm()`, `tts()` wait for one (raising
    `ProviderError` if it could not open); `aclose()` closes whatever opened."""

    def __init__(self, providers: ProviderSet) -> None:
        self._stt = _Opening[SttSession]("speech-to-text", providers.stt.open)
        self._llm = _Opening[LlmSession]("language model", providers.llm.open)
        self._tts = _Opening[TtsSession]("text-to-speech", providers.tts.open)

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
