import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from tests.fakes.cartesia_api import FakeCartesia, spoken_text
from voxline.agent_spec import CartesiaTts
from voxline.audio.pcm import Pcm16
from voxline.providers.base import (
    ContinuingTtsSession,
    ProviderError,
    RateSelectableTts,
)
from voxline.providers.tts import cartesia
from voxline.providers.tts.cartesia import CartesiaTextToSpeech, CartesiaTtsSession

LONG = "This clause is long enough to take several chunks of audio."


class Harness:
    """Starts fakes and opens sessions against them; closes the sessions before the fakes."""

    def __init__(self) -> None:
        self.fake = FakeCartesia()
        self._stack = contextlib.AsyncExitStack()
        self._sessions: list[CartesiaTtsSession] = []

    async def start(self, **options: Any) -> FakeCartesia:
        self.fake = await self._stack.enter_async_context(FakeCartesia(**options))
        return self.fake

    async def open(
        self, *, key: str | None = None, sample_rate: int | None = None, **spec: Any
    ) -> CartesiaTtsSession:
        provider = CartesiaTextToSpeech(
            CartesiaTts(voice_id="voice-1", base_url=self.fake.base_url, **spec),
            self.fake.api_key if key is None else key,
            language="en-US",
        )
        session = await provider.open(sample_rate)
        self._sessions.append(session)
        return session

    async def aclose(self) -> None:
        for session in self._sessions:
            await session.aclose()
        await self._stack.aclose()


@pytest.fixture
async def ca() -> AsyncIterator[Harness]:
    harness = Harness()
    yield harness
    await harness.aclose()


async def say(session: CartesiaTtsSession, text: str, context: str | None = None) -> str:
    async with asyncio.timeout(5):
        chunks = [pcm async for pcm in session.synthesize(text, context=context)]
    return spoken_text(np.concatenate(chunks), session.sample_rate)


def test_provider_offers_a_choice_of_sample_rates() -> None:
    provider = CartesiaTextToSpeech(CartesiaTts(voice_id="v"), "key", language="en")
    assert isinstance(provider, RateSelectableTts)
    assert 8000 in provider.sample_rates


async def test_sessions_continue_contexts(ca: Harness) -> None:
    await ca.start()
    assert isinstance(await ca.open(), ContinuingTtsSession)


async def test_open_connects_with_key_and_version_headers(ca: Harness) -> None:
    fake = await ca.start()
    await ca.open()
    assert len(fake.connections) == 1
    headers = fake.connections[0].headers
    assert headers["X-API-Key"] == "sk-cartesia-test"
    assert headers["Cartesia-Version"] == "2024-11-13"


async def test_a_one_off_clause_is_one_whole_context(ca: Harness) -> None:
    fake = await ca.start()
    session = await ca.open()
    assert await say(session, "Hello there.") == "Hello there."
    [request] = fake.inputs
    assert request["transcript"] == "Hello there."
    assert request["continue"] is False
    assert request["model_id"] == "sonic-2"
    assert request["voice"] == {"mode": "id", "id": "voice-1"}
    assert request["language"] == "en"
    assert request["output_format"] == {
        "container": "raw",
        "encoding": "pcm_s16le",
        "sample_rate": 16000,
    }


async def test_a_phone_session_gets_8_khz_straight_from_cartesia(ca: Harness) -> None:
    fake = await ca.start()
    session = await ca.open(sample_rate=8000)
    assert session.sample_rate == 8000
    assert await say(session, "Hi.") == "Hi."
    assert fake.inputs[0]["output_format"]["sample_rate"] == 8000


async def test_clauses_of_one_context_continue_it(ca: Harness) -> None:
    fake = await ca.start()
    session = await ca.open()
    assert await say(session, "Sure,", context="m1") == "Sure,"
    assert await say(session, "I can help.", context="m1") == " I can help."
    assert [(r["transcript"], r["continue"], r.get("flush")) for r in fake.inputs] == [
        ("Sure,", True, None),
        ("", True, True),
        (" I can help.", True, None),
        ("", True, True),
    ]
    assert len({r["context_id"] for r in fake.inputs}) == 1


async def test_end_context_sends_the_context_its_last_input(ca: Harness) -> None:
    fake = await ca.start()
    session = await ca.open()
    await say(session, "Goodbye.", context="m1")
    await session.end_context("m1")
    await fake.until(lambda: fake.inputs[-1]["continue"] is False)
    assert fake.inputs[-1]["transcript"] == ""
    assert fake.inputs[-1]["context_id"] == fake.inputs[0]["context_id"]


async def test_each_context_key_gets_its_own_context(ca: Harness) -> None:
    fake = await ca.start()
    session = await ca.open()
    await say(session, "One.", context="m1")
    await say(session, "Two.", context="m2")
    assert fake.inputs[0]["context_id"] != fake.inputs[2]["context_id"]


async def test_a_clause_after_the_context_may_have_expired_starts_a_new_one(
    ca: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cartesia, "_CONTEXT_IDLE_S", 0.0)
    fake = await ca.start()
    session = await ca.open()
    await say(session, "One.", context="m1")
    assert await say(session, "Two.", context="m1") == "Two."
    assert fake.inputs[0]["context_id"] != fake.inputs[2]["context_id"]


async def test_first_audio_arrives_while_the_clause_is_still_being_generated(
    ca: Harness,
) -> None:
    fake = await ca.start(pause_after_chunks=1)
    session = await ca.open()
    stream = session.synthesize(LONG)
    async with asyncio.timeout(5):
        first = await anext(stream)
    assert spoken_text(first, 16000) == LONG[:4]
    fake.resume()
    rest = [pcm async for pcm in stream]
    assert spoken_text(np.concatenate([first, *rest]), 16000) == LONG


async def test_cancelling_a_synthesis_stops_it_and_cancels_its_context(ca: Harness) -> None:
    fake = await ca.start(pause_after_chunks=1)
    session = await ca.open()
    heard = asyncio.Event()

    async def speak() -> None:
        async for _ in session.synthesize(LONG, context="m1"):
            heard.set()

    task = asyncio.ensure_future(speak())
    async with asyncio.timeout(5):
        await heard.wait()
        task.cancel()
        await asyncio.wait([task])
    assert task.cancelled()
    await fake.until(lambda: fake.cancelled == [fake.inputs[0]["context_id"]])


async def test_after_a_cancel_the_same_key_starts_a_new_context(ca: Harness) -> None:
    fake = await ca.start(pause_after_chunks=1)
    session = await ca.open()
    stream = session.synthesize(LONG, context="m1")
    async with asyncio.timeout(5):
        await anext(stream)
    await stream.aclose()
    fake.resume()
    assert await say(session, "Again.", context="m1") == "Again."
    assert fake.inputs[0]["context_id"] != fake.inputs[-2]["context_id"]


async def test_one_context_refuses_a_second_clause_while_one_is_running(ca: Harness) -> None:
    await ca.start(pause_after_chunks=1)
    session = await ca.open()
    stream = session.synthesize(LONG, context="m1")
    async with asyncio.timeout(5):
        await anext(stream)
    with pytest.raises(ProviderError, match="still being synthesized"):
        await say(session, "Too soon.", context="m1")
    await stream.aclose()


async def test_concurrent_contexts_share_one_socket(ca: Harness) -> None:
    fake = await ca.start()
    session = await ca.open()
    texts = await asyncio.gather(say(session, "First line."), say(session, "Second line."))
    assert list(texts) == ["First line.", "Second line."]
    assert len(fake.connections) == 1


async def test_an_error_frame_mid_stream_is_a_provider_error(ca: Harness) -> None:
    await ca.start(error_after_chunks=1)
    session = await ca.open()
    chunks: list[Pcm16] = []
    with pytest.raises(ProviderError, match="generation failed"):
        async with asyncio.timeout(5):
            async for pcm in session.synthesize(LONG):
                chunks.append(pcm)
    assert len(chunks) == 1


async def test_a_dropped_connection_fails_the_clause_and_the_next_one_reconnects(
    ca: Harness,
) -> None:
    fake = await ca.start(drop_after_chunks=1)
    session = await ca.open()
    with pytest.raises(ProviderError, match="dropped"):
        await say(session, LONG)
    assert await say(session, "Back again.") == "Back again."
    assert len(fake.connections) == 2


async def test_a_server_that_stays_silent_times_out(ca: Harness) -> None:
    await ca.start(first_chunk_delay_s=2.0)
    session = await ca.open(response_timeout_ms=100)
    with pytest.raises(ProviderError, match="sent nothing"):
        await say(session, "Hello.")


async def test_a_rejected_key_is_a_provider_error_that_says_so(ca: Harness) -> None:
    await ca.start()
    with pytest.raises(ProviderError, match=r"rejected the API key \(HTTP 401\)") as caught:
        await ca.open(key="sk-wrong")
    assert "sk-wrong" not in str(caught.value)


async def test_blank_text_makes_no_request(ca: Harness) -> None:
    fake = await ca.start()
    session = await ca.open()
    assert [pcm async for pcm in session.synthesize("  ")] == []
    assert fake.inputs == []


async def test_a_closed_session_refuses_text(ca: Harness) -> None:
    await ca.start()
    session = await ca.open()
    await session.aclose()
    with pytest.raises(ProviderError, match="closed"):
        await say(session, "Hello.")
