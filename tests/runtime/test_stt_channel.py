import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from voxline.audio.pcm import Pcm16
from voxline.providers.base import (
    ProviderError,
    Transcript,
)
from voxline.runtime.stt_channel import SttChannel


class ListeningSession:
    """Answers each finalize with how many samples it got since the previous one."""

    def __init__(self, *, fail_send: bool = False) -> None:
        self.samples = 0
        self.fail_send = fail_send

    async def send(self, pcm: Pcm16) -> None:
        if self.fail_send:
            self.fail_send = False
            raise ConnectionError("socket closed")
        self.samples += pcm.shape[0]

    async def finalize(self) -> str:
        await asyncio.sleep(0.01)
        count, self.samples = self.samples, 0
        return str(count)

    async def interim(self) -> AsyncIterator[Transcript]:
        return
        yield

    async def aclose(self) -> None:
        pass


def audio(samples: int) -> Pcm16:
    return np.zeros(samples, dtype=np.int16)


async def test_a_finalize_covers_exactly_the_audio_sent_before_it() -> None:
    channel = SttChannel()
    serving = asyncio.ensure_future(channel.serve(ListeningSession()))
    channel.send(audio(100))
    first = channel.finalize()
    channel.send(audio(30))
    second = channel.finalize()
    assert [await first, await second] == ["100", "30"]
    serving.cancel()


async def test_a_failed_send_fails_only_the_next_finalize() -> None:
    channel = SttChannel()
    serving = asyncio.ensure_future(channel.serve(ListeningSession(fail_send=True)))
    channel.send(audio(100))
    failed = channel.finalize()
    channel.send(audio(20))
    recovered = channel.finalize()
    with pytest.raises(ProviderError, match="socket closed"):
        await failed
    assert await recovered == "20"
    serving.cancel()


async def test_pending_finalizes_are_cancelled_when_serving_stops() -> None:
    channel = SttChannel()
    serving = asyncio.ensure_future(channel.serve(ListeningSession()))
    pending = channel.finalize()
    await asyncio.sleep(0)
    serving.cancel()
    await asyncio.gather(serving, return_exceptions=True)
    assert pending.cancelled()


class MulawSession(ListeningSession):
    """Also takes mu-law bytes, counting them apart."""

    def __init__(self) -> None:
        super().__init__()
        self.mulaw_bytes = 0

    async def send_mulaw(self, payload: bytes) -> None:
        self.mulaw_bytes += len(payload)


async def test_mulaw_bytes_go_as_is_to_a_session_that_takes_them() -> None:
    channel = SttChannel()
    session = MulawSession()
    serving = asyncio.ensure_future(channel.serve(session))
    channel.send(b"\xff" * 160)
    assert await channel.finalize() == "0"
    assert session.mulaw_bytes == 160
    serving.cancel()


async def test_mulaw_bytes_are_decoded_for_a_session_that_takes_only_pcm() -> None:
    channel = SttChannel()
    serving = asyncio.ensure_future(channel.serve(ListeningSession()))
    channel.send(b"\xff" * 160)
    assert await channel.finalize() == "160"
    serving.cancel()


async def test_samples_sent_counts_the_recognizers_position_in_its_stream() -> None:
    channel = SttChannel()
    channel.send(audio(100))
    channel.send(b"\xff" * 60)
    assert channel.samples_sent == 160


class PeekingSession(ListeningSession):
    """Peeks answer how many samples the open segment has so far."""

    async def peek(self) -> str:
        return f"so far {self.samples}"


async def test_a_peek_sees_the_audio_sent_before_it_and_ends_nothing() -> None:
    channel = SttChannel()
    serving = asyncio.ensure_future(channel.serve(PeekingSession()))
    channel.send(audio(100))
    peek = channel.peek()
    channel.send(audio(30))
    final = channel.finalize()
    assert [await peek, await final] == ["so far 100", "130"]
    serving.cancel()


async def test_a_recognizer_that_cannot_peek_answers_none() -> None:
    channel = SttChannel()
    serving = asyncio.ensure_future(channel.serve(ListeningSession()))
    channel.send(audio(100))
    assert await channel.peek() is None
    serving.cancel()
