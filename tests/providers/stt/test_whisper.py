"""The Whisper provider: segment handling on a stand-in model, then the bundled tiny.en."""

import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from tests.helpers.speech import synthesize_speech
from voxline.agent_spec import WhisperStt
from voxline.audio.pcm import Pcm16
from voxline.providers.base import (
    ProviderError,
    ProviderUnavailable,
)
from voxline.providers.executor import InferenceExecutor
from voxline.providers.stt.whisper import SAMPLE_RATE, WhisperSpeechToText, WhisperSttSession
from voxline.runtime.backchannels import Backchannels, Said
from voxline.simulator.speech import trim_silence


class FakeWhisper:
    """Stands in for LoadedWhisper: records what it was asked to transcribe."""

    def __init__(self) -> None:
        self.heard: list[npt.NDArray[np.float32]] = []

    def transcribe(
        self, audio: npt.NDArray[np.float32], language: str, beam_size: int, window_s: int
    ) -> str:
        self.heard.append(audio)
        return "hello there"


def speech_like(seconds: float) -> Pcm16:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (3000 * np.sin(2 * np.pi * 180 * t)).astype(np.int16)


def fake_session(executor: InferenceExecutor) -> tuple[WhisperSttSession, FakeWhisper]:
    whisper = FakeWhisper()
    model: Any = whisper
    return WhisperSttSession(model, executor, "en", beam_size=1, window_s=30), whisper


async def test_finalize_transcribes_the_buffered_audio_as_one_float_segment(
    executor: InferenceExecutor,
) -> None:
    session, whisper = fake_session(executor)
    await session.send(speech_like(0.5))
    await session.send(speech_like(0.5))
    assert await session.finalize() == "hello there"
    (audio,) = whisper.heard
    assert audio.dtype == np.float32
    assert audio.size == SAMPLE_RATE
    assert np.abs(audio).max() <= 1.0


async def test_finalize_starts_a_new_segment(executor: InferenceExecutor) -> None:
    session, whisper = fake_session(executor)
    await session.send(speech_like(0.5))
    await session.finalize()
    assert await session.finalize() == ""
    assert len(whisper.heard) == 1


async def test_silence_is_empty_without_running_the_model(executor: InferenceExecutor) -> None:
    session, whisper = fake_session(executor)
    await session.send(np.zeros(SAMPLE_RATE, dtype=np.int16))
    assert await session.finalize() == ""
    assert whisper.heard == []


async def test_a_runaway_segment_keeps_only_its_latest_thirty_seconds(
    executor: InferenceExecutor,
) -> None:
    session, whisper = fake_session(executor)
    for _ in range(40):
        await session.send(speech_like(1.0))
    await session.finalize()
    assert 30 * SAMPLE_RATE <= whisper.heard[0].size < 31 * SAMPLE_RATE


async def test_audio_that_is_not_mono_int16_is_refused(executor: InferenceExecutor) -> None:
    session, _ = fake_session(executor)
    with pytest.raises(ValueError, match="int16"):
        await session.send(np.zeros(160, dtype=np.float32))


async def test_closed_session_refuses_audio(executor: InferenceExecutor) -> None:
    session, _ = fake_session(executor)
    await session.aclose()
    with pytest.raises(ProviderError, match="closed"):
        await session.send(speech_like(0.1))


async def test_batch_recognizer_has_no_interim_results(executor: InferenceExecutor) -> None:
    session, _ = fake_session(executor)
    await session.send(speech_like(0.5))
    assert [transcript async for transcript in session.interim()] == []


async def test_missing_faster_whisper_package_names_it(
    executor: InferenceExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "faster_whisper", None)
    with pytest.raises(ProviderUnavailable, match=r"faster-whisper.*voxline\[local\]"):
        await WhisperSpeechToText.create(WhisperStt(), executor)


async def test_missing_model_directory_is_unavailable(
    executor: InferenceExecutor, tmp_path: Path
) -> None:
    with pytest.raises(ProviderUnavailable, match=r"model\.bin"):
        await WhisperSpeechToText.create(WhisperStt(model=str(tmp_path)), executor)


# --- the bundled model --------------------------------------------------------------------


@pytest.fixture
async def whisper(executor: InferenceExecutor) -> WhisperSpeechToText:
    stt = await WhisperSpeechToText.create(WhisperStt(), executor)
    await stt.warm_up()
    return stt


def spoken(text: str) -> Pcm16:
    """`text` in the bundled Piper voice at 16 kHz, the same every run (no sampling noise)."""
    return synthesize_speech(text, SAMPLE_RATE)


@pytest.mark.models
async def test_bundled_model_transcribes_spoken_words(
    whisper: WhisperSpeechToText, executor: InferenceExecutor
) -> None:
    session = await whisper.open()
    await session.send(spoken("I would like to book a table for two."))
    text = (await session.finalize()).lower()
    for word in ("book", "table", "two"):
        assert word in text


@pytest.mark.models
async def test_bundled_model_hears_no_words_in_quiet_noise(whisper: WhisperSpeechToText) -> None:
    noise = np.random.default_rng(7).normal(0, 330, 2 * SAMPLE_RATE)  # about -40 dBFS
    session = await whisper.open()
    await session.send(noise.astype(np.int16))
    assert await session.finalize() == ""


@pytest.mark.models
async def test_english_only_model_refuses_another_language(
    whisper: WhisperSpeechToText, executor: InferenceExecutor
) -> None:
    with pytest.raises(ProviderUnavailable, match="English-only"):
        await WhisperSpeechToText.create(WhisperStt(), executor, language="de")


@pytest.mark.models
@pytest.mark.parametrize(
    ("words", "backchannel"),
    [("Yeah.", True), ("Mm-hmm.", True), ("Okay.", True), ("Sorry, can I ask something?", False)],
)
async def test_a_peek_tells_a_backchannel_from_words(
    whisper: WhisperSpeechToText, executor: InferenceExecutor, words: str, backchannel: bool
) -> None:
    session = await whisper.open()
    await session.send(trim_silence(spoken(words))[: SAMPLE_RATE // 2])
    heard = await session.peek()
    said = Backchannels("en").classify(heard)
    # A backchannel never reads as words (at most unsure); words do.
    assert (said is not Said.WORDS) is backchannel, heard
    assert said is not Said.NOTHING
    assert await session.finalize() != ""  # peeking ended nothing
