import numpy as np
import pytest

from voxline.agent_spec import ScriptedStt
from voxline.providers.base import ProviderError
from voxline.providers.scripted import ScriptedSpeechToText, ScriptedSttSession

AUDIO = np.ones(320, dtype=np.int16)


async def open_session(*transcripts: str) -> ScriptedSttSession:
    stt = ScriptedSpeechToText(ScriptedStt(transcripts=list(transcripts), latency_ms=0))
    return await stt.open()


def test_declares_16_khz() -> None:
    assert ScriptedSpeechToText(ScriptedStt()).sample_rate == 16000


async def test_finalize_after_audio_returns_transcripts_in_order_then_cycles() -> None:
    session = await open_session("one", "two")
    results = []
    for _ in range(3):
        await session.send(AUDIO)
        results.append(await session.finalize())
    assert results == ["one", "two", "one"]


async def test_finalize_without_audio_returns_empty_and_keeps_the_script_position() -> None:
    session = await open_session("one", "two")
    assert await session.finalize() == ""
    await session.send(AUDIO)
    assert await session.finalize() == "one"
    assert await session.finalize() == ""


async def test_empty_audio_does_not_count_as_speech() -> None:
    session = await open_session("one")
    await session.send(np.zeros(0, dtype=np.int16))
    assert await session.finalize() == ""


async def test_each_session_starts_from_the_first_transcript() -> None:
    stt = ScriptedSpeechToText(ScriptedStt(transcripts=["one", "two"], latency_ms=0))
    first, second = await stt.open(), await stt.open()
    await first.send(AUDIO)
    await first.finalize()
    await second.send(AUDIO)
    assert await second.finalize() == "one"


async def test_finalize_waits_for_the_configured_latency(monkeypatch: pytest.MonkeyPatch) -> None:
    delays: list[float] = []

    async def fake_sleep(delay: float) -> None:
        delays.append(delay)

    monkeypatch.setattr("voxline.providers.scripted.stt.asyncio.sleep", fake_sleep)
    stt = ScriptedSpeechToText(ScriptedStt(transcripts=["one"], latency_ms=150))
    session = await stt.open()
    await session.send(AUDIO)
    assert await session.finalize() == "one"
    assert delays == [0.15]


async def test_interim_yields_nothing() -> None:
    session = await open_session("one")
    await session.send(AUDIO)
    assert [t async for t in session.interim()] == []


async def test_closed_session_refuses_audio() -> None:
    session = await open_session("one")
    await session.aclose()
    with pytest.raises(ProviderError, match="closed"):
        await session.send(AUDIO)
