"""Simulated calls: an `AgentRuntime` with scripted providers over a `FakeTransport`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from voxline.agent_spec import (
    AgentSpec,
    Interruptions,
    Limits,
    ScriptedLlm,
    ScriptedRule,
    ScriptedStt,
    ScriptedTts,
    TurnTaking,
)
from voxline.providers.base import ChatMessage, ProviderSet
from voxline.providers.scripted import (
    ScriptedLanguageModel,
    ScriptedSpeechToText,
    ScriptedTextToSpeech,
)
from voxline.runtime.agent import AgentRuntime, CallOutcome
from voxline.runtime.line_cache import LineCache
from voxline.runtime.options import RuntimeOptions
from voxline.runtime.recording import MemoryRecorder, TranscriptItem
from voxline.tools import ToolRunner

from .fakes import CountingTts, FakeTransport, RecordingLlm, RecordingStt, eventually

SECRET = b"test-signing-secret"


def scripted_spec(
    *,
    transcripts: list[str] | None = None,
    rules: list[ScriptedRule] | None = None,
    first_message: str | None = "Hi there.",
    **updates: Any,
) -> AgentSpec:
    """A fast, deterministic agent: energy VAD, quick scripted providers, short limits."""
    spec = AgentSpec(
        name="test agent",
        system_prompt="You are {{company}}'s assistant.",
        first_message=first_message,
        stt=ScriptedStt(transcripts=transcripts or ["Hello."], latency_ms=40),
        llm=ScriptedLlm(
            rules=rules or [], default_reply="Okay.", first_token_ms=40, tokens_per_second=200
        ),
        tts=ScriptedTts(first_byte_ms=10, ms_per_character=25),
        turn_taking=TurnTaking(
            vad="energy",
            # Immediate barge-in; tests/runtime/test_call_backchannels.py turns backchannels on.
            interruptions=Interruptions(
                min_speech_ms=200, false_interruption_timeout_ms=1500, backchannels=False
            ),
        ),
        limits=Limits(idle_timeout_s=30),
    )
    return spec.model_copy(update=updates)


@dataclass
class SimulatedCall:
    transport: FakeTransport
    recorder: MemoryRecorder
    runtime: AgentRuntime
    llm: RecordingLlm
    tts: CountingTts
    stt: RecordingStt
    task: asyncio.Task[CallOutcome]

    def items(self, role: str | None = None) -> list[TranscriptItem]:
        return [item for item in self.recorder.transcript() if role is None or item.role == role]

    def agent_texts(self) -> list[str]:
        return [item.text for item in self.items("agent")]

    def finished_agent_items(self) -> int:
        return sum(1 for item in self.items("agent") if item.heard_text is not None)

    async def agent_done(self, count: int, within: float = 8.0) -> None:
        """Wait until `count` agent messages have ended (heard in full or interrupted)."""
        await eventually(lambda: self.finished_agent_items() >= count, within)

    def last_request_messages(self) -> tuple[ChatMessage, ...]:
        return self.llm.requests[-1].messages

    async def outcome(self, within: float = 10.0) -> CallOutcome:
        async with asyncio.timeout(within):
            return await asyncio.shield(self.task)


@contextlib.asynccontextmanager
async def simulated_call(
    spec: AgentSpec,
    *,
    rate: int = 16000,
    transfer_supported: bool = True,
    cache: LineCache | None = None,
    options: RuntimeOptions | None = None,
    llm_fail_on: set[int] | None = None,
    llm_open_fails: bool = False,
    stt_fail_on: set[int] | None = None,
    memory: tuple[str, ...] = (),
) -> AsyncIterator[SimulatedCall]:
    """Run a call; on exit the caller hangs up (if the call still runs) and it is awaited."""
    assert isinstance(spec.llm, ScriptedLlm)
    assert isinstance(spec.stt, ScriptedStt)
    assert isinstance(spec.tts, ScriptedTts)
    llm = RecordingLlm(
        ScriptedLanguageModel(spec.llm), fail_on=llm_fail_on, fail_open=llm_open_fails
    )
    tts = CountingTts(ScriptedTextToSpeech(spec.tts))
    stt = RecordingStt(ScriptedSpeechToText(spec.stt), fail_on=stt_fail_on)
    providers = ProviderSet(stt=stt, llm=llm, tts=tts)
    transport = FakeTransport(rate, rate, transfer_supported=transfer_supported)
    recorder = MemoryRecorder()
    async with httpx.AsyncClient() as http:
        tools = ToolRunner(spec.tools, http=http, signing_secret=SECRET, session_id="sess_test")
        runtime = AgentRuntime(
            spec,
            providers,
            transport,
            recorder,
            tools=tools,
            variables={"company": "Acme"},
            memory=memory,
            line_cache=cache if cache is not None else LineCache(),
            options=options or RuntimeOptions(tool_filler_after_s=1.0),
        )
        transport.start_caller()
        task = asyncio.ensure_future(runtime.run())
        call = SimulatedCall(transport, recorder, runtime, llm, tts, stt, task)
        try:
            yield call
        finally:
            if not task.done():
                transport.hang_up_caller()
            try:
                async with asyncio.timeout(10):
                    await asyncio.shield(task)
            finally:
                await transport.stop_caller()
                if not task.done():
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
