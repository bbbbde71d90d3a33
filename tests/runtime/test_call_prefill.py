"""A model with a prompt cache evaluates the call's context while the greeting plays."""

from __future__ import annotations

import asyncio

import httpx

from voxline.providers.base import LlmRequest, LlmSession, ProviderSet
from voxline.providers.scripted import (
    ScriptedLanguageModel,
    ScriptedSpeechToText,
    ScriptedTextToSpeech,
)
from voxline.runtime.agent import AgentRuntime
from voxline.runtime.line_cache import LineCache
from voxline.runtime.recording import MemoryRecorder
from voxline.tools import ToolRunner

from .calls import SECRET, scripted_spec
from .fakes import FakeTransport, eventually


class _PrefillingLlm(ScriptedLanguageModel):
    prefilled: list[LlmRequest]

    async def open(self) -> LlmSession:
        session = await super().open()
        prefilled = self.prefilled = []

        async def prefill(request: LlmRequest) -> None:
            prefilled.append(request)

        session.prefill = prefill  # type: ignore[attr-defined]
        return session


async def test_the_context_is_prefilled_once_the_providers_are_open() -> None:
    spec = scripted_spec(first_message="Hello from {{company}}.")
    assert spec.stt.provider == "scripted" and spec.llm.provider == "scripted"
    assert spec.tts.provider == "scripted"
    llm = _PrefillingLlm(spec.llm)
    providers = ProviderSet(
        stt=ScriptedSpeechToText(spec.stt), llm=llm, tts=ScriptedTextToSpeech(spec.tts)
    )
    transport = FakeTransport(16000, 16000)
    async with httpx.AsyncClient() as http:
        runtime = AgentRuntime(
            spec,
            providers,
            transport,
            MemoryRecorder(),
            tools=ToolRunner([], http=http, signing_secret=SECRET, session_id="sess_test"),
            variables={"company": "Acme"},
            line_cache=LineCache(),
        )
        transport.start_caller()
        task = asyncio.ensure_future(runtime.run())
        try:
            await eventually(lambda: bool(getattr(llm, "prefilled", None)), 5)
        finally:
            transport.hang_up_caller()
            await asyncio.wait_for(task, 10)
            await transport.stop_caller()

    [request] = llm.prefilled
    assert [(m.role, m.content) for m in request.messages] == [
        ("system", "You are Acme's assistant."),
        ("assistant", "Hello from Acme."),
    ]
