"""A phone call through Deepgram's live API (the fake): mu-law goes to it as the line sent it,
and its utterance-end cue ends the caller's turn while our VAD hears the pause."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.fakes.deepgram_api import FakeDeepgram
from voxline.agent_spec import (
    AgentSpec,
    DeepgramStt,
    ScriptedLlm,
    ScriptedTts,
    TurnTaking,
)
from voxline.providers.base import ProviderSet
from voxline.providers.scripted import ScriptedLanguageModel, ScriptedTextToSpeech
from voxline.providers.stt.deepgram import DeepgramSpeechToText
from voxline.runtime.agent import AgentRuntime, CallOutcome
from voxline.runtime.line_cache import LineCache
from voxline.runtime.recording import MemoryRecorder
from voxline.tools import ToolRunner

from .calls import SECRET, scripted_spec
from .fakes import FakeTransport, eventually

# Opens loopback to the egress policy: the fake Deepgram listens on 127.0.0.1.
pytestmark = pytest.mark.usefixtures("loopback_egress")

# With these endpoints only the recognizer's cue can end a turn within the test's patience.
SLOW_ENDPOINTS = TurnTaking(
    vad="energy",
    end_of_turn_silence_ms=5000,
    min_end_of_turn_silence_ms=5000,
    max_end_of_turn_silence_ms=10_000,
)


def phone_spec(fake: FakeDeepgram, turn_taking: TurnTaking | None = None) -> AgentSpec:
    spec = scripted_spec(
        stt=DeepgramStt(base_url=fake.base_url),
        llm=ScriptedLlm(default_reply="Sure.", first_token_ms=20, tokens_per_second=200),
    )
    return spec if turn_taking is None else spec.model_copy(update={"turn_taking": turn_taking})


@contextlib.asynccontextmanager
async def phone_call(
    spec: AgentSpec, fake: FakeDeepgram
) -> AsyncIterator[tuple[FakeTransport, MemoryRecorder, asyncio.Task[CallOutcome]]]:
    assert isinstance(spec.stt, DeepgramStt) and isinstance(spec.llm, ScriptedLlm)
    assert isinstance(spec.tts, ScriptedTts)
    providers = ProviderSet(
        stt=DeepgramSpeechToText(spec.stt, fake.api_key, language="en"),
        llm=ScriptedLanguageModel(spec.llm),
        tts=ScriptedTextToSpeech(spec.tts),
    )
    transport = FakeTransport(8000, 8000, mulaw=True)
    recorder = MemoryRecorder()
    async with httpx.AsyncClient() as http:
        tools = ToolRunner(spec.tools, http=http, signing_secret=SECRET, session_id="sess_dg")
        runtime = AgentRuntime(
            spec, providers, transport, recorder, tools=tools, line_cache=LineCache()
        )
        transport.start_caller()
        task = asyncio.ensure_future(runtime.run())
        try:
            yield transport, recorder, task
        finally:
            transport.hang_up_caller()
            async with asyncio.timeout(10):
                await asyncio.shield(task)
            await transport.stop_caller()


def caller_texts(recorder: MemoryRecorder) -> list[str]:
    return [item.text for item in recorder.transcript() if item.role == "caller"]


def agent_texts(recorder: MemoryRecorder) -> list[str]:
    return [item.text for item in recorder.transcript() if item.role == "agent"]


def greeting_heard(recorder: MemoryRecorder) -> bool:
    return any(item.heard_text for item in recorder.transcript() if item.role == "agent")


async def test_a_phone_call_streams_mulaw_to_deepgram_and_is_answered() -> None:
    async with (
        FakeDeepgram() as fake,
        phone_call(phone_spec(fake), fake) as (transport, recorder, _t),
    ):
        await eventually(lambda: greeting_heard(recorder))
        await transport.speak(600)
        await eventually(lambda: "Sure." in agent_texts(recorder), within=8)
        query = fake.connections[0].query
        assert (query["encoding"], query["sample_rate"]) == ("mulaw", "8000")
        assert caller_texts(recorder) == ["hello there how are you"]


async def test_deepgrams_utterance_end_ends_the_turn_before_a_long_endpoint() -> None:
    async with (
        FakeDeepgram() as fake,
        phone_call(phone_spec(fake, SLOW_ENDPOINTS), fake) as (transport, recorder, _t),
    ):
        await eventually(lambda: greeting_heard(recorder))
        await transport.speak(600)
        await eventually(lambda: "Sure." in agent_texts(recorder), within=3.5)
        assert caller_texts(recorder) == ["hello there how are you"]
