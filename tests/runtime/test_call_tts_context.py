"""Engines that carry prosody across clauses get every clause of a message in one context."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx

from voxline.agent_spec import ScriptedRule, ScriptedTts
from voxline.audio.pcm import Pcm16
from voxline.providers.base import (
    ProviderSet,
    TtsSession,
)
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


class _ContextSession:
    """A scripted session that records the contexts it is asked to continue."""

    def __init__(self, inner: TtsSession, log: list[tuple[str, str | None]]) -> None:
        self._inner = inner
        self._log = log
        self.sample_rate = inner.sample_rate

    def synthesize(self, text: str, *, context: str | None = None) -> AsyncIterator[Pcm16]:
        self._log.append((text, context))
        return self._inner.synthesize(text)

    async def end_context(self, context: str) -> None:
        self._log.append(("<end>", context))

    async def aclose(self) -> None:
        await self._inner.aclose()


class _ContextTts(ScriptedTextToSpeech):
    def __init__(self) -> None:
        super().__init__(ScriptedTts(first_byte_ms=5, ms_per_character=10))
        self.log: list[tuple[str, str | None]] = []

    async def open(self) -> TtsSession:
        return _ContextSession(await super().open(), self.log)


async def test_clauses_of_one_reply_share_a_context_that_is_ended_after_the_last() -> None:
    spec = scripted_spec(
        transcripts=["What do you do?"],
        rules=[ScriptedRule(match="do", say="We fix teeth, mostly. We also clean them.")],
    )
    assert spec.stt.provider == "scripted" and spec.llm.provider == "scripted"
    tts = _ContextTts()
    providers = ProviderSet(
        stt=ScriptedSpeechToText(spec.stt), llm=ScriptedLanguageModel(spec.llm), tts=tts
    )
    transport = FakeTransport(16000, 16000)
    async with httpx.AsyncClient() as http:
        runtime = AgentRuntime(
            spec,
            providers,
            transport,
            MemoryRecorder(),
            tools=ToolRunner([], http=http, signing_secret=SECRET, session_id="sess_test"),
            line_cache=LineCache(),
        )
        transport.start_caller()
        task = asyncio.ensure_future(runtime.run())
        try:
            await eventually(lambda: any(text == "Hi there." for text, _ in tts.log), 5)
            await asyncio.sleep(0.5)
            await transport.speak(400)
            await eventually(lambda: any(text == "<end>" for text, _ in tts.log), 8)
        finally:
            transport.hang_up_caller()
            await asyncio.wait_for(task, 10)
            await transport.stop_caller()

    reply = [(text, context) for text, context in tts.log if context is not None]
    assert len(reply) >= 3, tts.log
    contexts = {context for _, context in reply}
    assert len(contexts) == 1
    assert reply[-1][0] == "<end>"
    assert ("Hi there.", None) in tts.log, "fixed lines are synthesized on their own"
