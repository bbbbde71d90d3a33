"""The three provider contracts: streaming STT, streaming LLM with tools, streaming TTS.

Providers know nothing of sessions or transports. Audio is mono PCM16 as a numpy int16 array
at the rate the provider declares. A provider object is shared by all calls of a process
(models load once); each call opens its own session from it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

Pcm16 = npt.NDArray[np.int16]


class ProviderError(Exception):
    """A provider failed (network, vendor error, model crash). The call goes on without it."""


class ProviderUnavailable(ProviderError):
    """A provider cannot be built here: a missing package, model file or key. Says which."""


# --- speech to text -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    is_final: bool


class SttSession(Protocol):
    """One call's recognizer. `send` gets caller audio during speech (with a little pre-roll);
    `finalize` ends the current segment and returns its final text (possibly empty).
    Interim results, if the provider has them, arrive through `interim()`."""

    async def send(self, pcm: Pcm16) -> None: ...

    async def finalize(self) -> str: ...

    def interim(self) -> AsyncIterator[Transcript]: ...

    async def aclose(self) -> None: ...


class SpeechToText(Protocol):
    name: str
    sample_rate: int

    async def open(self) -> SttSession: ...


# --- language model -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LlmRequest:
    messages: tuple[ChatMessage, ...]
    tools: tuple[ToolDefinition, ...] = ()


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallsRequested:
    calls: tuple[ToolCall, ...]


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


LlmEvent = TextDelta | ToolCallsRequested | Usage


class LlmSession(Protocol):
    """One call's model connection. `stream` yields text deltas, then at most one
    `ToolCallsRequested` (all calls of the step), then `Usage`. Cancelling the iteration
    must stop generation promptly."""

    def stream(self, request: LlmRequest) -> AsyncIterator[LlmEvent]: ...

    async def aclose(self) -> None: ...


class LanguageModel(Protocol):
    name: str

    async def open(self) -> LlmSession: ...


# --- text to speech -------------------------------------------------------------------------


class TtsSession(Protocol):
    """One call's synthesizer. `synthesize` streams PCM16 at `sample_rate` for one clause.
    Cancelling the iteration must stop synthesis promptly."""

    sample_rate: int

    def synthesize(self, text: str) -> AsyncIterator[Pcm16]: ...

    async def aclose(self) -> None: ...


class TextToSpeech(Protocol):
    name: str
    sample_rate: int

    async def open(self) -> TtsSession: ...


@dataclass(frozen=True, slots=True)
class ProviderSet:
    """The three providers one call uses, already built from the agent's spec."""

    stt: SpeechToText
    llm: LanguageModel
    tts: TextToSpeech
