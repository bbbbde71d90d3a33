"""Scripted speech-to-text: each segment that had audio yields the next scripted transcript."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from voxline.agent_spec import ScriptedStt
from voxline.audio.pcm import Pcm16
from voxline.providers.base import (
    ProviderError,
    Transcript,
)


class ScriptedSpeechToText:
    """A SpeechToText that hears nothing and returns `spec.transcripts` in order, cycling."""

    name = "scripted"
    sample_rate = 16000

    def __init__(self, spec: ScriptedStt) -> None:
        self.spec = spec

    async def open(self) -> ScriptedSttSession:
        return ScriptedSttSession(self.spec)


class ScriptedSttSession:
    """One call's scripted recognizer. A segment ends when `finalize` is called: audio sent
    while a finalize is pending belongs to the next segment."""

    def __init__(self, spec: ScriptedStt) -> None:
        self._transcripts = tuple(spec.transcripts)
        self._latency_s = spec.latency_ms / 1000
        self._next = 0
        self._heard = False
        self._closed = False

    async def send(self, pcm: Pcm16) -> None:
        self._check_open()
        if pcm.size:
            self._heard = True

    async def finalize(self) -> str:
        """After `latency_ms`: the next transcript if audio arrived since the last finalize,
        else ""."""
        self._check_open()
        heard, self._heard = self._heard, False
        await asyncio.sleep(self._latency_s)
        if not heard:
            return ""
        text = self._transcripts[self._next % len(self._transcripts)]
        self._next += 1
        return text

    async def peek(self) -> str:
        """The transcript the next finalize will give, if audio arrived since the last one."""
        self._check_open()
        if not self._heard:
            return ""
        return self._transcripts[self._next % len(self._transcripts)]

    async def interim(self) -> AsyncIterator[Transcript]:
        """Scripted recognition has no interim results: this ends at once."""
        return
        yield  # makes this an (empty) async generator

    async def aclose(self) -> None:
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise ProviderError("the scripted STT session is closed")
