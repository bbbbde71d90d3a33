"""Feeds one call's STT session in order without making the event loop wait on it.

Audio chunks (PCM16, or mu-law bytes for a recognizer that takes them), peeks and finalize
requests queue up and one task serves them, so a peek or a finalize always covers exactly the
audio sent before it. A failed `send` fails the next finalize instead of the call: the
runtime apologises for that turn and the call goes on.
"""

from __future__ import annotations

import asyncio
import logging

from voxline.audio.mulaw import decode_mulaw
from voxline.audio.pcm import Pcm16
from voxline.providers.base import (
    MulawSttSession,
    PeekingSttSession,
    ProviderError,
    SttSession,
)

logger = logging.getLogger(__name__)


class _Peek:
    """A peek request in the queue: answered with the words so far (None: cannot peek)."""

    def __init__(self) -> None:
        self.future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()


class SttChannel:
    """Queue audio with `send`, ask for a segment's text with `finalize`; `serve` runs the
    queue against the session (start it once the session is open)."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Pcm16 | bytes | asyncio.Future[str] | _Peek] = asyncio.Queue()
        self.samples_sent = 0
        """Samples queued so far: the recognizer's position in its audio stream."""

    def send(self, audio: Pcm16 | bytes) -> None:
        """Queue caller audio for the recognizer (mu-law bytes are decoded for a session
        that cannot take them)."""
        if len(audio):
            self.samples_sent += len(audio)
            self._queue.put_nowait(audio)

    def finalize(self) -> asyncio.Future[str]:
        """Queue the end of the current segment; the future gets its final text (or the
        provider's error)."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(future)
        return future

    def peek(self) -> asyncio.Future[str | None]:
        """Queue a peek at the open segment (after the audio sent so far): its words so far,
        "" when there are none, None when the recognizer cannot peek or the peek failed."""
        peek = _Peek()
        self._queue.put_nowait(peek)
        return peek.future

    async def serve(self, session: SttSession) -> None:
        """Serve the queue until cancelled; pending finalizes are cancelled on exit."""
        failure: Exception | None = None
        current: asyncio.Future[str] | None = None
        mulaw = session if isinstance(session, MulawSttSession) else None
        try:
            while True:
                item = await self._queue.get()
                if isinstance(item, _Peek):
                    await _answer_peek(session, item.future, failure)
                elif isinstance(item, asyncio.Future):
                    current = item
                    await self._finalize(session, item, failure)
                    current = None
                    failure = None
                elif failure is None:
                    try:
                        if not isinstance(item, bytes):
                            await session.send(item)
                        elif mulaw is not None:
                            await mulaw.send_mulaw(item)
                        else:
                            await session.send(decode_mulaw(item))
                    except Exception as exc:
                        logger.warning("STT send failed: %s", exc)
                        failure = exc
        finally:
            if current is not None:
                current.cancel()
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if isinstance(item, _Peek):
                    item.future.cancel()
                elif isinstance(item, asyncio.Future):
                    item.cancel()

    @staticmethod
    async def _finalize(
        session: SttSession, future: asyncio.Future[str], failure: Exception | None
    ) -> None:
        if future.done():
            return
        if failure is not None:
            future.set_exception(ProviderError(f"speech recognition failed: {failure}"))
            return
        try:
            text = await session.finalize()
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(text)


async def _answer_peek(
    session: SttSession, future: asyncio.Future[str | None], failure: Exception | None
) -> None:
    text: str | None = None
    if failure is None and isinstance(session, PeekingSttSession):
        try:
            text = await session.peek()
        except Exception as exc:
            logger.debug("STT peek failed: %s", exc)
    if not future.done():
        future.set_result(text)
