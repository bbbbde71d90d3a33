"""The Piper provider on the bundled en_US-joe-medium voice."""

import sys
from pathlib import Path

import numpy as np
import pytest

from voxline.agent_spec import PiperTts
from voxline.audio.pcm import Pcm16
from voxline.providers.base import (
    ProviderError,
    ProviderUnavailable,
)
from voxline.providers.executor import InferenceExecutor
from voxline.providers.tts.piper import PiperTextToSpeech, PiperTtsSession


@pytest.fixture
async def piper(executor: InferenceExecutor) -> PiperTextToSpeech:
    tts = await PiperTextToSpeech.create(PiperTts(), executor)
    await tts.warm_up()
    return tts


async def chunks_of(session: PiperTtsSession, text: str) -> list[Pcm16]:
    return [chunk async for chunk in session.synthesize(text)]


@pytest.mark.models
async def test_sentence_is_spoken_at_the_voice_rate_for_a_plausible_time(
    piper: PiperTextToSpeech,
) -> None:
    session = await piper.open()
    pcm = np.concatenate(await chunks_of(session, "I would like to book a table for two."))
    seconds = pcm.size / session.sample_rate
    assert session.sample_rate == piper.sample_rate == 22050
    assert pcm.dtype == np.int16
    assert 1.0 < seconds < 5.0
    assert np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) > 1000  # clearly not silent


@pytest.mark.models
async def test_each_sentence_arrives_as_soon_as_it_is_synthesized(
    piper: PiperTextToSpeech,
) -> None:
    chunks = await chunks_of(await piper.open(), "Hello there. How are you? Goodbye.")
    assert len(chunks) == 3


@pytest.mark.models
async def test_slower_length_scale_gives_longer_speech(executor: InferenceExecutor) -> None:
    text = "Thank you for calling."
    normal = await PiperTextToSpeech.create(PiperTts(), executor)
    slow = await PiperTextToSpeech.create(PiperTts(length_scale=1.5), executor)
    normal_pcm = np.concatenate(await chunks_of(await normal.open(), text))
    slow_pcm = np.concatenate(await chunks_of(await slow.open(), text))
    assert slow_pcm.size > 1.2 * normal_pcm.size


@pytest.mark.models
async def test_blank_text_gives_no_audio(piper: PiperTextToSpeech) -> None:
    assert await chunks_of(await piper.open(), "  \n") == []


@pytest.mark.models
async def test_closed_session_refuses_to_synthesize(piper: PiperTextToSpeech) -> None:
    session = await piper.open()
    await session.aclose()
    with pytest.raises(ProviderError, match="closed"):
        await chunks_of(session, "Hello.")


@pytest.mark.models
async def test_voices_are_loaded_once_per_process(
    piper: PiperTextToSpeech, executor: InferenceExecutor
) -> None:
    again = await PiperTextToSpeech.create(PiperTts(length_scale=1.2), executor)
    assert again.voice is piper.voice


async def test_missing_piper_package_names_it(
    executor: InferenceExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "piper", None)
    with pytest.raises(ProviderUnavailable, match=r"piper-tts.*voxline\[piper\]"):
        await PiperTextToSpeech.create(PiperTts(), executor)


async def test_missing_voice_file_is_unavailable(
    executor: InferenceExecutor, tmp_path: Path
) -> None:
    with pytest.raises(ProviderUnavailable, match=r"absent\.onnx"):
        await PiperTextToSpeech.create(PiperTts(voice=str(tmp_path / "absent.onnx")), executor)
