"""What an agent is: prompt, voice, providers, tools, turn-taking and limits.

These pydantic models are the single definition shared by the REST API (validation, OpenAPI)
and the runtime (behaviour). Provider choices are discriminated unions on `provider`, so an
unknown provider name or a bad option is a 422 that names the field.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- speech to text -------------------------------------------------------------------------


class WhisperStt(_Spec):
    """Offline Whisper (faster-whisper / CTranslate2), transcribing at end of each utterance."""

    provider: Literal["whisper"] = "whisper"
    model: str = Field(
        default="tiny.en",
        description="'tiny.en' (bundled) or a path to a CTranslate2 Whisper model directory.",
    )
    compute_type: Literal["int8", "int8_float32", "float32"] = "int8"
    beam_size: int = Field(default=1, ge=1, le=5)


class ScriptedStt(_Spec):
    """Deterministic STT for tests and demos: each utterance yields the next transcript."""

    provider: Literal["scripted"] = "scripted"
    transcripts: list[str] = Field(default_factory=lambda: ["hello"], min_length=1)
    latency_ms: int = Field(default=150, ge=0, le=10_000)


SttSpec = Annotated[WhisperStt | ScriptedStt, Field(discriminator="provider")]


# --- language model -------------------------------------------------------------------------


class LlamaCppLlm(_Spec):
    """Offline llama.cpp on a GGUF file (the bundled Gemma 3 270M by default)."""

    provider: Literal["llama_cpp"] = "llama_cpp"
    model_path: str | None = Field(
        default=None, description="Path to a GGUF file; the bundled Gemma 3 270M when unset."
    )
    temperature: float = Field(default=0.6, ge=0.0, le=2.0)
    max_tokens: int = Field(default=60, ge=1, le=1024)
    context_tokens: int = Field(default=2048, ge=256, le=32768)


class ScriptedToolCall(_Spec):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ScriptedRule(_Spec):
    """When the caller's text matches `match` (regex, case-insensitive): say and/or call a tool."""

    match: str
    say: str | None = None
    tool: ScriptedToolCall | None = None
    then_say: str | None = Field(
        default=None, description="Said after the tool result; '{result}' is replaced by it."
    )

    @field_validator("match")
    @classmethod
    def _valid_regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from exc
        return value


class ScriptedLlm(_Spec):
    """Deterministic LLM for tests, demos and benchmarks: answers by rules, at a set speed."""

    provider: Literal["scripted"] = "scripted"
    rules: list[ScriptedRule] = Field(default_factory=list)
    default_reply: str = "I see. Tell me more."
    first_token_ms: int = Field(default=250, ge=0, le=30_000)
    tokens_per_second: float = Field(default=50.0, gt=0, le=10_000)


LlmSpec = Annotated[LlamaCppLlm | ScriptedLlm, Field(discriminator="provider")]


# --- text to speech -------------------------------------------------------------------------


class PiperTts(_Spec):
    """Offline Piper voice (optional GPL extra `voxline[piper]`)."""

    provider: Literal["piper"] = "piper"
    voice: str = Field(
        default="en_US-joe-medium",
        description="'en_US-joe-medium' (bundled) or a path to a Piper .onnx voice.",
    )
    length_scale: float = Field(default=1.0, gt=0.3, le=3.0, description="Higher is slower.")


class ScriptedTts(_Spec):
    """Deterministic TTS: a voiced-sounding tone whose length follows the text."""

    provider: Literal["scripted"] = "scripted"
    first_byte_ms: int = Field(default=40, ge=0, le=10_000)
    ms_per_character: float = Field(default=60.0, gt=0, le=1000)


TtsSpec = Annotated[PiperTts | ScriptedTts, Field(discriminator="provider")]


# --- tools ----------------------------------------------------------------------------------


class EndCallTool(_Spec):
    type: Literal["end_call"] = "end_call"
    name: str = "end_call"
    description: str = "End the call after saying goodbye."


class TransferCallTool(_Spec):
    type: Literal["transfer_call"] = "transfer_call"
    name: str = "transfer_call"
    description: str = "Transfer the caller to a human."
    number: str = Field(pattern=r"^\+[1-9]\d{6,14}$", description="E.164 number to dial.")


class WebhookTool(_Spec):
    """An HTTP endpoint the LLM can call; requests are HMAC-SHA256 signed."""

    type: Literal["webhook"] = "webhook"
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
    description: str
    url: HttpUrl
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON Schema of the arguments.",
    )
    timeout_ms: int = Field(default=5000, ge=100, le=60_000)

    @field_validator("parameters")
    @classmethod
    def _object_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("type") != "object":
            raise ValueError("parameters must be a JSON Schema with type 'object'")
        return value


ToolSpec = Annotated[EndCallTool | TransferCallTool | WebhookTool, Field(discriminator="type")]


# --- turn-taking and limits -----------------------------------------------------------------


class Interruptions(_Spec):
    enabled: bool = True
    min_speech_ms: int = Field(
        default=250,
        ge=0,
        le=3000,
        description="Caller speech shorter than this (a backchannel) does not interrupt.",
    )
    false_interruption_timeout_ms: int = Field(
        default=1500,
        ge=0,
        le=10_000,
        description="An interruption that yields no words within this time is false.",
    )
    resume_after_false_interruption: bool = True


class TurnTaking(_Spec):
    vad: Literal["silero", "energy"] = Field(
        default="silero", description="'energy' is a cheap RMS detector for benchmarks."
    )
    vad_threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    speech_start_ms: int = Field(default=60, ge=20, le=1000)
    end_of_turn_silence_ms: int = Field(default=500, ge=100, le=5000)
    min_end_of_turn_silence_ms: int = Field(
        default=250, ge=50, le=5000, description="Used when the transcript is clearly complete."
    )
    max_end_of_turn_silence_ms: int = Field(
        default=1200, ge=100, le=10_000, description="Used when the caller trails off."
    )
    interruptions: Interruptions = Field(default_factory=Interruptions)


class Limits(_Spec):
    idle_timeout_s: float = Field(default=8.0, ge=1.0, le=600.0)
    idle_reprompts: int = Field(default=2, ge=0, le=10)
    idle_reprompt_message: str = "Are you still there?"
    goodbye_message: str = "Goodbye!"
    max_duration_s: int = Field(default=1800, ge=10, le=4 * 3600)
    max_duration_message: str = "I'm sorry, we've reached the time limit for this call. Goodbye!"
    apology_message: str = "Sorry, I had a problem there. Could you say that again?"
    tool_filler_message: str = "One moment."


class AgentSpec(_Spec):
    """The behaviour of an agent, as stored and as run."""

    name: str = Field(min_length=1, max_length=200)
    system_prompt: str = Field(
        default="You are a helpful voice assistant. Keep answers short.",
        max_length=100_000,
        description="May contain {{variable}} placeholders filled from the instance.",
    )
    first_message: str | None = Field(
        default=None, max_length=2000, description="Spoken first; may contain placeholders."
    )
    language: str = Field(default="en", pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    stt: SttSpec = Field(default_factory=WhisperStt)
    llm: LlmSpec = Field(default_factory=LlamaCppLlm)
    tts: TtsSpec = Field(default_factory=PiperTts)
    tools: list[ToolSpec] = Field(default_factory=list)
    turn_taking: TurnTaking = Field(default_factory=TurnTaking)
    limits: Limits = Field(default_factory=Limits)
    webhook_url: HttpUrl | None = Field(
        default=None, description="Receives signed session events (session.ended)."
    )

    @field_validator("tools")
    @classmethod
    def _unique_tool_names(cls, tools: list[ToolSpec]) -> list[ToolSpec]:
        names = [tool.name for tool in tools]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"tool names must be unique: {', '.join(duplicates)}")
        return tools


def placeholders(template: str) -> set[str]:
    """The variable names a `{{variable}}` template refers to."""
    return set(_PLACEHOLDER.findall(template))


def fill_placeholders(template: str, variables: dict[str, str]) -> str:
    """Replace `{{name}}` with its value; unknown names become empty, never left as braces."""
    return _PLACEHOLDER.sub(lambda match: variables.get(match.group(1), ""), template)
