"""The three provider contracts: streaming STT, streaming LLM with tools, streaming TTS.

Providers know nothing of sessions or transports. Audio is mono PCM16 as a numpy int16 array
at the rate the provider declares. A provider object is shared by all calls of a process
(models load once); each call opens its own session from it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from voxline.audio.pcm import Pcm16


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


@dataclass(frozen=True, slots=True)
class SpeechEvent:
    """A recognizer's own voice-activity cue: the caller started speaking, or a word gap of
    the configured length followed the last word. `at_s` is seconds into the audio stream."""

    kind: Literal["speech_started", "utterance_end"]
    at_s: float


@runtime_checkable
class SpeechEventSource(Protocol):
    """Optional SttSession extension: `events()` yields the recognizer's voice-activity cues
    as they arrive (one consumer), so turn-taking can use them next to its own VAD."""

    def events(self) -> AsyncIterator[SpeechEvent]: ...


@runtime_checkable
class PeekingSttSession(Protocol):
    """Optional SttSession extension: `peek()` is a quick, rough guess at the words of the
    segment so far (everything sent since the last finalize), without ending it. Far cheaper
    than `finalize`; used to tell a backchannel from a barge-in while the agent speaks."""

    async def peek(self) -> str: ...


@runtime_checkable
class RateSelectableStt(Protocol):
    """Optional SpeechToText extension: `open(sample_rate=r)` for any r in `sample_rates`
    gives a session that takes audio at r, so a phone call feeds 8 kHz with no resampling.
    Without it (or with None) a session takes audio at `sample_rate`."""

    name: str
    sample_rate: int
    sample_rates: tuple[int, ...]

    async def open(self, sample_rate: int | None = None) -> SttSession: ...


@runtime_checkable
class MulawSttSession(Protocol):
    """Optional SttSession extension: `send_mulaw` takes G.711 mu-law bytes at 8 kHz (one
    byte per sample) exactly as a phone line delivers them."""

    async def send_mulaw(self, payload: bytes) -> None: ...


@runtime_checkable
class MulawInputStt(Protocol):
    """Optional SpeechToText extension: `open_mulaw()` gives a session taking 8 kHz audio whose
    `send_mulaw` forwards phone audio undecoded (its `send` still takes PCM16 at 8 kHz)."""

    name: str
    sample_rate: int

    async def open_mulaw(self) -> SttSession: ...


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


@runtime_checkable
class PrefillingLlmSession(Protocol):
    """Optional LlmSession extension for engines with a prompt cache: `prefill(request)`
    evaluates the request's prompt ahead of time (while the greeting plays), so the first
    real turn only pays for what the caller adds."""

    async def prefill(self, request: LlmRequest) -> None: ...


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


@runtime_checkable
class ContinuingTtsSession(TtsSession, Protocol):
    """Optional TtsSession extension for engines that carry prosody across clauses: clauses
    synthesized with the same `context` key (one agent message, in order) sound like one
    utterance; `end_context` says that message has no more clauses. Stopping a contextual
    synthesis early cancels its context: a later clause with that key starts afresh."""

    def synthesize(self, text: str, *, context: str | None = None) -> AsyncIterator[Pcm16]: ...

    async def end_context(self, context: str) -> None: ...


class TextToSpeech(Protocol):
    name: str
    sample_rate: int

    async def open(self) -> TtsSession: ...


@runtime_checkable
class RateSelectableTts(Protocol):
    """Optional TextToSpeech extension: `open(sample_rate=r)` for any r in `sample_rates`
    gives a session producing audio at r (its `sample_rate`), so a phone call gets 8 kHz
    straight from the engine. Without it (or with None) sessions run at `sample_rate`."""

    name: str
    sample_rate: int
    sample_rates: tuple[int, ...]

    async def open(self, sample_rate: int | None = None) -> TtsSession: ...


@dataclass(frozen=True, slots=True)
class ProviderSet:
    """The three providers one call uses, already built from the agent's spec."""

    stt: SpeechToText
    llm: LanguageModel
    tts: TextToSpeech
