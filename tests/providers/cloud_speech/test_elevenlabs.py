import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from tests.fakes.cartesia_api import spoken_text
from tests.fakes.elevenlabs_api import FakeElevenLabs
from voxline.agent_spec import ElevenLabsTts
from voxline.audio.pcm import Pcm16
from voxline.providers.base import (
    ProviderError,
    RateSelectableTts,
)
from voxline.providers.tts.elevenlabs import ElevenLabsTextToSpeech, ElevenLabsTtsSession

LONG = "This clause is long enough to take several chunks of audio."


class Harness:
    """Starts fakes and opens sessions against them; closes the sessions before the fakes."""

    def __init__(self) -> None:
        self.fake = FakeElevenLabs()
        self._stack = contextlib.AsyncExitStack()
        self._sessions: list[ElevenLabsTtsSession] = []

    async def start(self, **options: Any) -> FakeElevenLabs:
        self.fake = await self._stack.enter_async_context(FakeElevenLabs(**options))
        return self.fake

    async def open(
        self, *, key: str | None = None, sample_rate: int | None = None, **spec: Any
    ) -> ElevenLabsTtsSession:
        provider = ElevenLabsTextToSpeech(
            ElevenLabsTts(voice_id="voice-1", base_url=self.fake.base_url, **spec),
            self.fake.api_key if key is None else key,
        )
        session = await provider.open(sample_rate)
        self._sessions.append(session)
        return session

    async def aclose(self) -> None:
        for session in self._sessions:
            await session.aclose()
        await self._stack.aclose()


@pytest.fixture
async def el() -> AsyncIterator[Harness]:
    harness = Harness()
    yield harness
    await harness.aclose()


async def say(session: ElevenLabsTtsSession, text: str) -> str:
    async with asyncio.timeout(5):
        chunks = [pcm async for pcm in session.synthesize(text)]
    return spoken_text(np.concatenate(chunks), session.sample_rate)


def test_provider_offers_a_choice_of_sample_rates() -> None:
    provider = ElevenLabsTextToSpeech(ElevenLabsTts(voice_id="v"), "key")
    assert isinstance(provider, RateSelectableTts)
    assert 8000 in provider.sample_rates


async def test_open_readies_the_first_connection_with_the_documented_handshake(
    el: Harness,
) -> None:
    fake = await el.start()
    await el.open()
    await fake.until(lambda: len(fake.connections) == 1 and bool(fake.connections[0].messages))
    log = fake.connections[0]
    assert log.path == "/v1/text-to-speech/voice-1/stream-input"
    assert log.headers["xi-api-key"] == "xi-test-key"
    assert log.query == {
        "model_id": "eleven_flash_v2_5",
        "output_format": "pcm_16000",
        "inactivity_timeout": "180",
    }
    assert log.messages == [
        {
            "text": " ",
            "voice_settings": {
                "stability": 0.5,
                "similarity_boost": 0.8,
                "style": 0.0,
                "use_speaker_boost": False,
                "speed": 1.0,
            },
        }
    ]


async def test_a_clause_is_spoken_and_ends_its_connection_input(el: Harness) -> None:
    fake = await el.start()
    session = await el.open()
    assert await say(session, "Hello there.") == "Hello there. "
    assert fake.connections[0].messages[1:] == [{"text": "Hello there. "}, {"text": ""}]


async def test_each_clause_uses_a_connection_opened_ahead_of_it(el: Harness) -> None:
    fake = await el.start()
    session = await el.open()
    await say(session, "One.")
    await fake.until(lambda: len(fake.connections) == 2)
    await say(session, "Two.")
    assert fake.spoken[:2] == ["One. ", "Two. "]


async def test_a_phone_session_gets_8_khz_pcm_from_elevenlabs(el: Harness) -> None:
    fake = await el.start()
    session = await el.open(sample_rate=8000)
    assert await say(session, "Hi.") == "Hi. "
    assert fake.connections[0].query["output_format"] == "pcm_8000"


async def test_a_configured_language_is_enforced_on_the_model(el: Harness) -> None:
    fake = await el.start()
    await el.open(language="es")
    assert fake.connections[0].query["language_code"] == "es"


async def test_first_audio_arrives_while_the_clause_is_still_being_generated(
    el: Harness,
) -> None:
    fake = await el.start(pause_after_chunks=1)
    session = await el.open()
    stream = session.synthesize(LONG)
    async with asyncio.timeout(5):
        first = await anext(stream)
    assert spoken_text(first, 16000) == LONG[:4]
    fake.resume()
    rest = [pcm async for pcm in stream]
    assert spoken_text(np.concatenate([first, *rest]), 16000) == LONG + " "


async def test_cancelling_a_synthesis_closes_its_connection(el: Harness) -> None:
    fake = await el.start(pause_after_chunks=1)
    session = await el.open()
    heard = asyncio.Event()

    async def speak() -> None:
        async for _ in session.synthesize(LONG):
            heard.set()

    task = asyncio.ensure_future(speak())
    async with asyncio.timeout(5):
        await heard.wait()
        task.cancel()
        await asyncio.wait([task])
    assert task.cancelled()
    await fake.until(lambda: fake.connections[0].closed)


async def test_an_error_message_mid_stream_is_a_provider_error(el: Harness) -> None:
    await el.start(error_after_chunks=1)
    session = await el.open()
    chunks: list[Pcm16] = []
    with pytest.raises(ProviderError, match="quota_exceeded"):
        async with asyncio.timeout(5):
            async for pcm in session.synthesize(LONG):
                chunks.append(pcm)
    assert len(chunks) == 1


async def test_a_dropped_connection_fails_its_clause_only(el: Harness) -> None:
    await el.start(drop_after_chunks=1)
    session = await el.open()
    with pytest.raises(ProviderError, match="dropped"):
        await say(session, LONG)
    assert await say(session, "Again.") == "Again. "


async def test_a_spare_the_server_closed_is_replaced(el: Harness) -> None:
    fake = await el.start()
    session = await el.open()
    await fake.until(lambda: len(fake.connections) == 1)
    await fake.close_idle()
    await fake.until(lambda: fake.connections[0].closed)
    assert await say(session, "Still here.") == "Still here. "
    assert fake.spoken[1] == "Still here. "


async def test_a_server_that_stays_silent_times_out(el: Harness) -> None:
    await el.start(first_chunk_delay_s=2.0)
    session = await el.open(response_timeout_ms=100)
    with pytest.raises(ProviderError, match="sent nothing"):
        await say(session, "Hello.")


async def test_a_rejected_key_is_a_provider_error_that_says_so(el: Harness) -> None:
    await el.start()
    with pytest.raises(ProviderError, match=r"rejected the API key \(HTTP 401\)") as caught:
        await el.open(key="xi-wrong")
    assert "xi-wrong" not in str(caught.value)


async def test_blank_text_sends_nothing(el: Harness) -> None:
    fake = await el.start()
    session = await el.open()
    assert [pcm async for pcm in session.synthesize(" ")] == []
    assert fake.spoken == [""]


async def test_aclose_closes_the_connection_kept_ready(el: Harness) -> None:
    fake = await el.start()
    session = await el.open()
    await session.aclose()
    await fake.until(lambda: fake.connections[0].closed)


async def test_a_closed_session_refuses_text(el: Harness) -> None:
    await el.start()
    session = await el.open()
    await session.aclose()
    with pytest.raises(ProviderError, match="closed"):
        await say(session, "Hello.")
