"""FallbackSpeechToText: a recognizer that errors or stalls hands the segment to the next."""

import asyncio
from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest

from voxline.agent_spec import (
    AgentSpec,
    DeepgramStt,
    ScriptedLlm,
    ScriptedStt,
    ScriptedTts,
    WhisperStt,
)
from voxline.audio.pcm import Pcm16
from voxline.providers.base import (
    ProviderError,
    SttSession,
    Transcript,
)
from voxline.providers.executor import InferenceExecutor
from voxline.providers.fallback_stt import FallbackSpeechToText
from voxline.providers.registry import ProviderRegistry
from voxline.providers.scripted import ScriptedSpeechToText


class Recognizer:
    """A SpeechToText whose sessions answer a finalize with `name:<samples heard>`; it can fail
    its `send`s, fail or stall its finalizes, or refuse to open."""

    def __init__(
        self,
        name: str,
        *,
        sample_rate: int = 16000,
        fail_send: bool = False,
        fail_finalize: bool = False,
        stall_finalize: bool = False,
        fail_open: bool = False,
    ) -> None:
        self.name = name
        self.sample_rate = sample_rate
        self.fail_send = fail_send
        self.fail_finalize = fail_finalize
        self.stall_finalize = stall_finalize
        self.fail_open = fail_open
        self.sessions: list[RecognizerSession] = []

    async def open(self) -> SttSession:
        if self.fail_open:
            raise ProviderError(f"{self.name} is down")
        session = RecognizerSession(self)
        self.sessions.append(session)
        return session


class RecognizerSession:
    def __init__(self, owner: Recognizer) -> None:
        self._owner = owner
        self.samples = 0
        self.finalizes = 0
        self.closed = False

    async def send(self, pcm: Pcm16) -> None:
        if self._owner.fail_send:
            raise ProviderError(f"{self._owner.name} lost its socket")
        self.samples += pcm.shape[0]

    async def finalize(self) -> str:
        self.finalizes += 1
        if self._owner.fail_finalize:
            raise ProviderError(f"{self._owner.name} crashed")
        if self._owner.stall_finalize:
            await asyncio.Event().wait()
        count, self.samples = self.samples, 0
        return f"{self._owner.name}:{count}"

    async def interim(self) -> AsyncIterator[Transcript]:
        return
        yield

    async def aclose(self) -> None:
        self.closed = True


def audio(samples: int) -> Pcm16:
    return np.full(samples, 100, dtype=np.int16)


def chain(*recognizers: Recognizer, timeout_s: float = 5.0) -> FallbackSpeechToText:
    return FallbackSpeechToText(recognizers, [timeout_s] * len(recognizers))


async def test_a_failed_finalize_replays_the_segment_into_the_next_recognizer() -> None:
    first, second = Recognizer("a", fail_finalize=True), Recognizer("b")
    session = await chain(first, second).open()
    await session.send(audio(300))
    await session.send(audio(200))
    assert await session.finalize() == "b:500"
    assert first.sessions[0].closed


async def test_a_stalled_finalize_is_abandoned_after_its_timeout() -> None:
    first, second = Recognizer("a", stall_finalize=True), Recognizer("b")
    session = await chain(first, second, timeout_s=0.05).open()
    await session.send(audio(160))
    assert await session.finalize() == "b:160"
    assert first.sessions[0].closed


async def test_later_segments_go_to_the_recognizer_that_took_over() -> None:
    first, second = Recognizer("a", fail_finalize=True), Recognizer("b")
    session = await chain(first, second).open()
    await session.send(audio(100))
    await session.finalize()
    await session.send(audio(40))
    assert await session.finalize() == "b:40"
    assert first.sessions[0].finalizes == 1


async def test_a_failed_send_switches_at_once_with_the_segment_so_far() -> None:
    first, second = Recognizer("a", fail_send=True), Recognizer("b")
    session = await chain(first, second).open()
    await session.send(audio(100))
    await session.send(audio(50))
    assert await session.finalize() == "b:150"


async def test_a_finalized_segment_is_not_replayed() -> None:
    first, second = Recognizer("a"), Recognizer("b")
    session = await chain(first, second).open()
    await session.send(audio(100))
    assert await session.finalize() == "a:100"
    first.fail_finalize = True
    await session.send(audio(30))
    assert await session.finalize() == "b:30"


async def test_a_recognizer_that_cannot_open_is_skipped() -> None:
    first = Recognizer("a", fail_finalize=True)
    second, third = Recognizer("b", fail_open=True), Recognizer("c")
    session = await chain(first, second, third).open()
    await session.send(audio(70))
    assert await session.finalize() == "c:70"


async def test_when_every_recognizer_fails_the_finalize_raises_naming_each() -> None:
    first, second = Recognizer("a", fail_finalize=True), Recognizer("b", fail_finalize=True)
    session = await chain(first, second).open()
    await session.send(audio(70))
    with pytest.raises(ProviderError, match=r"#1 \(a\).*#2 \(b\)"):
        await session.finalize()
    with pytest.raises(ProviderError):
        await session.send(audio(10))


async def test_a_recognizer_at_another_rate_gets_resampled_audio() -> None:
    first = Recognizer("a", fail_finalize=True, sample_rate=8000)
    second = Recognizer("b", sample_rate=16000)
    session = await chain(first, second).open()
    for _ in range(10):
        await session.send(audio(160))  # 200 ms at 8 kHz
    text = await session.finalize()
    assert text.startswith("b:")
    assert abs(int(text.removeprefix("b:")) - 3200) <= 16


async def test_closing_closes_the_active_recognizer() -> None:
    first, second = Recognizer("a"), Recognizer("b")
    session = await chain(first, second).open()
    await session.aclose()
    assert first.sessions[0].closed
    assert second.sessions == []


def test_the_chain_needs_a_timeout_per_recognizer() -> None:
    with pytest.raises(ValueError, match="one finalize timeout per recognizer"):
        FallbackSpeechToText([Recognizer("a"), Recognizer("b")], [1.0])


@pytest.fixture
def registry() -> Iterator[ProviderRegistry]:
    executor = InferenceExecutor(threads=1)
    yield ProviderRegistry(executor)
    executor.shutdown()


async def test_the_registry_builds_a_chain_when_stt_fallbacks_are_given(
    registry: ProviderRegistry,
) -> None:
    spec = AgentSpec(
        name="a",
        stt=DeepgramStt(api_key_ref=None, finalize_timeout_ms=800),
        stt_fallbacks=[ScriptedStt(finalize_timeout_ms=1500)],
        llm=ScriptedLlm(),
        tts=ScriptedTts(),
    )
    providers = await registry.build(spec)
    assert isinstance(providers.stt, FallbackSpeechToText)
    assert providers.stt.name == "deepgram > scripted"
    assert providers.stt.finalize_timeouts_s == (1.3, 1.5)
    assert providers.stt.sample_rates == (8000, 16000, 24000, 32000, 44100, 48000)


def test_at_most_four_stt_fallbacks_are_allowed() -> None:
    with pytest.raises(ValueError, match="at most 4"):
        AgentSpec(name="a", stt_fallbacks=[WhisperStt()] * 5)


async def test_a_peek_goes_to_the_active_recognizer() -> None:
    primary = ScriptedSpeechToText(ScriptedStt(transcripts=["yeah"], latency_ms=0))
    chain = FallbackSpeechToText([primary], [1.0])
    session = await chain.open()
    await session.send(np.ones(1600, dtype=np.int16))
    assert await session.peek() == "yeah"
    assert await session.finalize() == "yeah"
    await session.aclose()
