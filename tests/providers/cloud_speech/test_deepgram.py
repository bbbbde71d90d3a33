import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from tests.fakes.deepgram_api import FakeDeepgram
from voxline.agent_spec import DeepgramStt
from voxline.providers.base import (
    MulawInputStt,
    MulawSttSession,
    ProviderError,
    RateSelectableStt,
    SpeechEvent,
    SpeechEventSource,
    Transcript,
)
from voxline.providers.stt.deepgram import DeepgramSpeechToText, DeepgramSttSession

SPEECH = np.full(1600, 1000, dtype=np.int16)  # 100 ms at 16 kHz: 3200 bytes


class Harness:
    """Starts fakes and opens sessions against them; closes the sessions before the fakes."""

    def __init__(self) -> None:
        self.fake = FakeDeepgram()
        self._stack = contextlib.AsyncExitStack()
        self._sessions: list[DeepgramSttSession] = []

    async def start(self, **options: Any) -> FakeDeepgram:
        self.fake = await self._stack.enter_async_context(FakeDeepgram(**options))
        return self.fake

    async def open(
        self, *, key: str | None = None, sample_rate: int | None = None, **spec: Any
    ) -> DeepgramSttSession:
        provider = DeepgramSpeechToText(
            DeepgramStt(base_url=self.fake.base_url, **spec),
            self.fake.api_key if key is None else key,
            language="en",
        )
        session = await provider.open(sample_rate)
        self._sessions.append(session)
        return session

    async def aclose(self) -> None:
        for session in self._sessions:
            await session.aclose()
        await self._stack.aclose()


@pytest.fixture
async def dg() -> AsyncIterator[Harness]:
    harness = Harness()
    yield harness
    await harness.aclose()


async def collect(stream: AsyncIterator[Any]) -> list[Any]:
    async with asyncio.timeout(5):
        return [item async for item in stream]


def test_provider_offers_a_choice_of_sample_rates() -> None:
    provider = DeepgramSpeechToText(DeepgramStt(), "key", language="en")
    assert isinstance(provider, RateSelectableStt)
    assert 8000 in provider.sample_rates


async def test_connects_with_the_documented_query_and_token_header(
    dg: Harness,
) -> None:
    fake = await dg.start()
    await dg.open()
    log = fake.connections[0]
    assert log.headers["Authorization"] == "Token dg-test-key"
    assert log.query == {
        "model": "nova-3",
        "language": "en",
        "encoding": "linear16",
        "sample_rate": "16000",
        "channels": "1",
        "interim_results": "true",
        "endpointing": "300",
        "utterance_end_ms": "1000",
        "vad_events": "true",
        "smart_format": "true",
        "punctuate": "true",
    }


async def test_a_phone_session_asks_for_8_khz_linear16(dg: Harness) -> None:
    fake = await dg.start()
    session = await dg.open(sample_rate=8000)
    query = fake.connections[0].query
    assert session.sample_rate == 8000
    assert (query["encoding"], query["sample_rate"]) == ("linear16", "8000")


async def test_open_refuses_a_rate_deepgram_is_not_offered() -> None:
    provider = DeepgramSpeechToText(DeepgramStt(), "key", language="en")
    with pytest.raises(ValueError, match="11025"):
        await provider.open(11025)


async def test_finalize_returns_every_final_result_of_the_segment(
    dg: Harness,
) -> None:
    fake = await dg.start()
    session = await dg.open()
    await session.send(SPEECH)
    await session.send(SPEECH)
    assert await session.finalize() == "hello there how are you"
    assert fake.connections[0].controls.count("Finalize") == 1


async def test_each_finalize_returns_its_own_segment(dg: Harness) -> None:
    await dg.start(transcripts=("one two", "three four"))
    session = await dg.open()
    texts = []
    for _ in range(2):
        await session.send(SPEECH)
        texts.append(await session.finalize())
    assert texts == ["one two", "three four"]


async def test_interim_yields_the_running_text_of_the_segment(
    dg: Harness,
) -> None:
    await dg.start()
    session = await dg.open()
    interim = asyncio.ensure_future(collect(session.interim()))
    await session.send(SPEECH)
    await session.finalize()
    await session.aclose()
    transcripts = await interim
    assert transcripts == [
        Transcript("hello", is_final=False),
        Transcript("hello there", is_final=True),
        Transcript("hello there how are you", is_final=True),
    ]


async def test_events_report_speech_started_and_utterance_end(
    dg: Harness,
) -> None:
    await dg.start()
    session = await dg.open()
    assert isinstance(session, SpeechEventSource)
    events = asyncio.ensure_future(collect(session.events()))
    await session.send(SPEECH)
    await session.finalize()
    await session.aclose()
    assert [event.kind for event in await events] == ["speech_started", "utterance_end"]
    assert all(isinstance(event, SpeechEvent) for event in await events)


async def test_unanswered_finalize_returns_the_finals_received_so_far(
    dg: Harness,
) -> None:
    fake = await dg.start(answer_finalize=False)
    session = await dg.open(finalize_timeout_ms=100)
    await session.send(SPEECH)
    await fake.until(lambda: fake.connections[0].audio_bytes >= SPEECH.nbytes)
    assert await session.finalize() == "hello there"


async def test_finalize_without_new_audio_returns_empty_and_sends_nothing(
    dg: Harness,
) -> None:
    fake = await dg.start()
    session = await dg.open()
    assert await session.finalize() == ""
    await session.aclose()
    await fake.until(lambda: "CloseStream" in fake.connections[0].controls)
    assert "Finalize" not in fake.connections[0].controls


async def test_keepalive_is_sent_while_no_audio_flows(dg: Harness) -> None:
    fake = await dg.start()
    await dg.open(keepalive_interval_ms=50)
    await fake.until(lambda: "KeepAlive" in fake.connections[0].controls)


async def test_reconnects_after_an_unexpected_close(dg: Harness) -> None:
    fake = await dg.start(transcripts=("lost words", "hello again"), drop_after_bytes=SPEECH.nbytes)
    session = await dg.open()
    await session.send(SPEECH)
    await fake.until(lambda: len(fake.connections) == 2)
    await session.send(SPEECH)
    assert await session.finalize() == "hello again"


async def test_a_failed_reconnect_fails_the_session(dg: Harness) -> None:
    await dg.start(drop_after_bytes=SPEECH.nbytes, reject_reconnects=True)
    session = await dg.open()
    await session.send(SPEECH)
    with pytest.raises(ProviderError, match="reconnecting failed"):
        await collect(session.interim())
    with pytest.raises(ProviderError, match="HTTP 503"):
        await session.finalize()


async def test_a_rejected_key_is_a_provider_error_that_says_so(
    dg: Harness,
) -> None:
    await dg.start()
    with pytest.raises(ProviderError, match=r"rejected the API key \(HTTP 401\)") as caught:
        await dg.open(key="wrong-secret-key")
    assert "wrong-secret-key" not in str(caught.value)
    assert "'deepgram' credential" in str(caught.value)


async def test_an_unreachable_server_is_a_provider_error(dg: Harness) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dg.fake.base_url = f"ws://127.0.0.1:{port}"  # nothing listens there any more
    with pytest.raises(ProviderError, match="could not connect to Deepgram"):
        await dg.open()


async def test_aclose_sends_close_stream(dg: Harness) -> None:
    fake = await dg.start()
    session = await dg.open()
    await session.aclose()
    await fake.until(lambda: "CloseStream" in fake.connections[0].controls)


async def test_send_rejects_audio_that_is_not_mono_int16(
    dg: Harness,
) -> None:
    await dg.start()
    session = await dg.open()
    with pytest.raises(ValueError, match="mono int16"):
        await session.send(np.zeros(160, dtype=np.float32))


async def test_a_closed_session_refuses_audio(dg: Harness) -> None:
    await dg.start()
    session = await dg.open()
    await session.aclose()
    with pytest.raises(ProviderError, match="closed"):
        await session.send(SPEECH)


async def test_the_key_stays_out_of_the_handshake_debug_log(
    dg: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = await dg.start()
    await dg.open()
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("voxline")]
    assert "> Authorization: [redacted]" in ours
    assert not [message for message in ours if fake.api_key in message]


PHONE_FRAME = b"\x7f\xff\x00\x80" * 40  # 160 mu-law bytes: 20 ms at 8 kHz


async def open_mulaw(dg: Harness) -> DeepgramSttSession:
    provider = DeepgramSpeechToText(
        DeepgramStt(base_url=dg.fake.base_url), dg.fake.api_key, language="en"
    )
    assert isinstance(provider, MulawInputStt)
    session = await provider.open_mulaw()
    dg._sessions.append(session)
    return session


async def test_a_mulaw_session_asks_for_8_khz_mulaw(dg: Harness) -> None:
    fake = await dg.start()
    session = await open_mulaw(dg)
    query = fake.connections[0].query
    assert isinstance(session, MulawSttSession)
    assert (query["encoding"], query["sample_rate"]) == ("mulaw", "8000")


async def test_a_mulaw_session_sends_the_phone_bytes_as_is(dg: Harness) -> None:
    fake = await dg.start(final_after_bytes=1600)
    session = await open_mulaw(dg)
    for _ in range(10):
        await session.send_mulaw(PHONE_FRAME)
    assert await session.finalize() == "hello there how are you"
    assert fake.connections[0].audio_bytes == 1600


async def test_a_mulaw_session_encodes_pcm_it_is_given(dg: Harness) -> None:
    fake = await dg.start()
    session = await open_mulaw(dg)
    await session.send(np.zeros(800, dtype=np.int16))
    await fake.until(lambda: fake.connections[0].audio_bytes == 800)


async def test_a_linear16_phone_session_decodes_mulaw(dg: Harness) -> None:
    fake = await dg.start()
    session = await dg.open(sample_rate=8000)
    await session.send_mulaw(PHONE_FRAME)
    await fake.until(lambda: fake.connections[0].audio_bytes == 2 * len(PHONE_FRAME))


async def test_a_wideband_session_refuses_mulaw(dg: Harness) -> None:
    await dg.start()
    session = await dg.open()
    with pytest.raises(ValueError, match="not 8 kHz mu-law"):
        await session.send_mulaw(PHONE_FRAME)


async def test_peek_is_the_running_text_of_the_segment_and_ends_nothing(dg: Harness) -> None:
    fake = await dg.start()
    session = await dg.open()
    interim = asyncio.ensure_future(collect(session.interim()))
    await session.send(SPEECH)
    await fake.until(lambda: bool(fake.connections) and fake.connections[0].audio_bytes > 0)
    await asyncio.sleep(0.2)  # the interim result follows the audio
    assert "hello" in await session.peek()
    assert fake.connections[0].controls.count("Finalize") == 0
    assert await session.finalize() == "hello there how are you"
    assert await session.peek() == ""
    await session.aclose()
    await interim
