from collections.abc import AsyncIterator

import numpy as np
import pytest

from voxline.agent_spec import AgentSpec, ScriptedLlm, ScriptedStt, ScriptedTts
from voxline.audio.pcm import Pcm16
from voxline.providers.base import ProviderError
from voxline.providers.executor import InferenceExecutor
from voxline.providers.fallback import FallbackTextToSpeech
from voxline.providers.registry import ProviderRegistry


class FakeTts:
    """A synthesizer whose clauses are `chunks` of silence (sample counts), failing on cue."""

    def __init__(
        self,
        name: str,
        rate: int = 16000,
        chunks: tuple[int, ...] = (160, 160),
        *,
        fail_after: int | None = None,
    ) -> None:
        self.name = name
        self.sample_rate = rate
        self.chunks = chunks
        self.fail_after = fail_after
        self.clauses: list[str] = []

    async def open(self) -> "FakeTtsSession":
        return FakeTtsSession(self, self.sample_rate)


class FakeTtsSession:
    def __init__(self, owner: FakeTts, rate: int) -> None:
        self.owner = owner
        self.sample_rate = rate

    async def synthesize(self, text: str) -> AsyncIterator[Pcm16]:
        self.owner.clauses.append(text)
        for index, size in enumerate(self.owner.chunks):
            if index == self.owner.fail_after:
                raise ProviderError(f"{self.owner.name} broke")
            yield np.zeros(size, dtype=np.int16)

    async def aclose(self) -> None:
        pass


class RateSelectableFakeTts(FakeTts):
    """Opens at any of its rates, with sessions keeping contexts (recorded in `sessions`)."""

    sample_rates = (8000, 16000, 24000)

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.sessions: list[ContinuingFakeTtsSession] = []

    async def open(self, sample_rate: int | None = None) -> "FakeTtsSession":
        self.sessions.append(ContinuingFakeTtsSession(self, sample_rate or self.sample_rate))
        return self.sessions[-1]


class ContinuingFakeTtsSession(FakeTtsSession):
    def __init__(self, owner: FakeTts, rate: int) -> None:
        super().__init__(owner, rate)
        self.contexts: list[str | None] = []
        self.ended: list[str] = []

    async def synthesize(self, text: str, *, context: str | None = None) -> AsyncIterator[Pcm16]:
        self.contexts.append(context)
        async for pcm in super().synthesize(text):
            yield pcm

    async def end_context(self, context: str) -> None:
        self.ended.append(context)


async def samples(stream: AsyncIterator[Pcm16]) -> int:
    return sum([len(pcm) async for pcm in stream])


async def test_a_clause_failing_before_audio_is_spoken_by_the_next() -> None:
    primary, backup = FakeTts("primary", fail_after=0), FakeTts("backup")
    session = await FallbackTextToSpeech([primary, backup]).open()
    assert await samples(session.synthesize("Hello.")) == 320
    assert (primary.clauses, backup.clauses) == (["Hello."], ["Hello."])


async def test_a_failure_after_audio_raises_without_restarting() -> None:
    primary, backup = FakeTts("primary", fail_after=1), FakeTts("backup")
    session = await FallbackTextToSpeech([primary, backup]).open()
    with pytest.raises(ProviderError, match="primary broke"):
        await samples(session.synthesize("Hello."))
    assert backup.clauses == []


async def test_a_fallback_at_another_rate_is_resampled_to_the_sessions_rate() -> None:
    primary = FakeTts("primary", rate=16000, fail_after=0)
    backup = FakeTts("backup", rate=24000, chunks=(1200, 1200))
    session = await FallbackTextToSpeech([primary, backup]).open()
    assert session.sample_rate == 16000
    # 100 ms at 24 kHz is 1600 samples at 16 kHz.
    assert await samples(session.synthesize("Hello.")) == 1600


async def test_sessions_open_at_a_requested_rate_the_primary_produces() -> None:
    primary = RateSelectableFakeTts("primary")
    session = await FallbackTextToSpeech([primary, FakeTts("backup")]).open(sample_rate=8000)
    assert session.sample_rate == 8000
    assert await samples(session.synthesize("Hi.")) == 320


async def test_a_rate_the_primary_cannot_produce_is_refused() -> None:
    with pytest.raises(ValueError, match="8000"):
        await FallbackTextToSpeech([FakeTts("primary"), FakeTts("backup")]).open(sample_rate=8000)


async def test_contexts_reach_members_that_keep_them() -> None:
    primary = RateSelectableFakeTts("primary")
    session = await FallbackTextToSpeech([primary, FakeTts("backup")]).open()
    await samples(session.synthesize("First clause,", context="message-1"))
    await session.end_context("message-1")
    [opened] = primary.sessions
    assert (opened.contexts, opened.ended) == (["message-1"], ["message-1"])


async def test_the_registry_builds_a_chain_for_tts_fallbacks() -> None:
    executor = InferenceExecutor(threads=1)
    spec = AgentSpec(
        name="a",
        stt=ScriptedStt(),
        llm=ScriptedLlm(),
        tts=ScriptedTts(),
        tts_fallbacks=[ScriptedTts(first_byte_ms=5)],
    )
    try:
        providers = await ProviderRegistry(executor).build(spec)
    finally:
        executor.shutdown()
    assert isinstance(providers.tts, FallbackTextToSpeech)
    assert len(providers.tts.synthesizers) == 2
