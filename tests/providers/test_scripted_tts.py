import asyncio

import numpy as np
import pytest

from voxline.agent_spec import ScriptedTts
from voxline.audio.pcm import Pcm16
from voxline.providers.base import ProviderError
from voxline.providers.scripted import ScriptedTextToSpeech
from voxline.providers.scripted.tts import CHUNK_SAMPLES


async def synthesize(text: str, ms_per_character: float = 60.0) -> list[Pcm16]:
    tts = ScriptedTextToSpeech(ScriptedTts(first_byte_ms=0, ms_per_character=ms_per_character))
    session = await tts.open()
    return [chunk async for chunk in session.synthesize(text)]


def test_declares_16_khz() -> None:
    assert ScriptedTextToSpeech(ScriptedTts()).sample_rate == 16000


async def test_duration_follows_text_length() -> None:
    chunks = await synthesize("hello there", ms_per_character=50)
    assert sum(chunk.size for chunk in chunks) == 11 * 50 * 16


async def test_audio_comes_in_100_ms_chunks() -> None:
    chunks = await synthesize("x" * 25, ms_per_character=10)
    assert [chunk.size for chunk in chunks] == [CHUNK_SAMPLES, CHUNK_SAMPLES, 800]


async def test_audio_is_int16_and_voiced_near_minus_12_dbfs() -> None:
    audio = np.concatenate(await synthesize("a sentence to speak", ms_per_character=60))
    assert audio.dtype == np.int16
    peak_dbfs = 20 * np.log10(np.abs(audio.astype(np.float64)).max() / 32768)
    assert peak_dbfs == pytest.approx(-12.0, abs=0.1)
    rms_dbfs = 20 * np.log10(np.sqrt(np.mean(audio.astype(np.float64) ** 2)) / 32768)
    assert rms_dbfs > -30.0


async def test_pitch_is_140_hz() -> None:
    audio = np.concatenate(await synthesize("x" * 50, ms_per_character=20)).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(audio))
    frequencies = np.fft.rfftfreq(audio.size, 1 / 16000)
    assert frequencies[np.argmax(spectrum)] == pytest.approx(140, abs=2)


async def test_clause_edges_fade_from_and_to_silence() -> None:
    audio = np.concatenate(await synthesize("hello", ms_per_character=60))
    assert audio[0] == 0
    assert audio[-1] == 0


async def test_same_text_gives_the_same_samples() -> None:
    first = np.concatenate(await synthesize("deterministic"))
    second = np.concatenate(await synthesize("deterministic"))
    assert np.array_equal(first, second)


async def test_empty_text_gives_no_audio() -> None:
    assert await synthesize("") == []


async def test_first_chunk_waits_for_first_byte_latency(monkeypatch: pytest.MonkeyPatch) -> None:
    delays: list[float] = []

    async def fake_sleep(delay: float) -> None:
        delays.append(delay)

    monkeypatch.setattr("voxline.providers.scripted.tts.asyncio.sleep", fake_sleep)
    session = await ScriptedTextToSpeech(ScriptedTts(first_byte_ms=40)).open()
    [chunk async for chunk in session.synthesize("hi")]
    assert delays[0] == 0.04
    assert set(delays[1:]) == {0}


async def test_cancelling_stops_synthesis() -> None:
    session = await ScriptedTextToSpeech(ScriptedTts(first_byte_ms=0)).open()
    received: list[Pcm16] = []
    first = asyncio.Event()

    async def consume() -> None:
        async for chunk in session.synthesize("x" * 1000):
            received.append(chunk)
            first.set()

    task = asyncio.create_task(consume())
    await first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(received) < 1000 * 60 * 16 // CHUNK_SAMPLES


async def test_closed_session_refuses_text() -> None:
    session = await ScriptedTextToSpeech(ScriptedTts()).open()
    await session.aclose()
    with pytest.raises(ProviderError, match="closed"):
        [chunk async for chunk in session.synthesize("hi")]
