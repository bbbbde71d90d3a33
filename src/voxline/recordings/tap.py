"""`RecordingTransport`: a transport that records the call passing through it.

It wraps the call's real transport, so the runtime records any transport without knowing:
caller audio as it comes in, agent audio as it goes out, and every `clear` (a barge-in),
which cuts the agent channel where the caller stopped hearing it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from voxline.audio.pcm import Pcm16
from voxline.recordings.writer import RecordingWriter
from voxline.runtime.events import CallEvent
from voxline.runtime.transport import AudioIn, InboundEvent, Transport


class RecordingTransport:
    """Forwards everything to `inner`; copies the audio to `writer` (which never blocks)."""

    def __init__(self, inner: Transport, writer: RecordingWriter) -> None:
        self._inner = inner
        self._writer = writer
        self.input_rate = inner.input_rate
        self.output_rate = inner.output_rate

    async def events(self) -> AsyncIterator[InboundEvent]:
        inner = self._inner.events()
        try:
            async for event in inner:
                if isinstance(event, AudioIn):
                    self._writer.caller(event.pcm, self.input_rate)
                yield event
        finally:
            # The inner stream's own clean-up runs now, not whenever it is collected.
            close = getattr(inner, "aclose", None)
            if close is not None:
                await close()

    async def send_audio(self, pcm: Pcm16) -> None:
        self._writer.agent(pcm, self.output_rate)
        await self._inner.send_audio(pcm)

    async def send_mark(self, name: str) -> None:
        await self._inner.send_mark(name)

    async def clear(self) -> None:
        self._writer.cut()
        await self._inner.clear()

    async def emit(self, event: CallEvent) -> None:
        await self._inner.emit(event)

    async def hang_up(self) -> None:
        await self._inner.hang_up()

    async def transfer(self, number: str) -> None:
        await self._inner.transfer(number)
