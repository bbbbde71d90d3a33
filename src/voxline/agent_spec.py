"""What an agent is: prompt, voice, providers, tools, turn-taking and limits.

These pydantic models are the single definition shared by the REST API (validation, OpenAPI)
and the runtime (behaviour). Provider choices are discriminated unions on `provider`, so an
unknown provider name or a bad option is a 422 that names the field.

Why one module of ~700 lines: it is the API's schema for an agent, read in one place; the
vendors' behaviour lives in `voxline.providers` (see `providers/catalog.py`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator
from pydantic.alias_generators import to_camel

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_CREDENTIAL_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
# Public for the secrets store and API: a workspace secret is named like an `api_key_ref`.
CREDENTIAL_NAME_PATTERN = _CREDENTIAL_NAME
_WS_BASE_URL = r"^wss?://[^\s/?#@]+(/[^\s?#]*)?$"
_DEEPGRAM_STALL_GRACE_MS = 500

Role = Literal["stt", "llm", "tts"]
"""The three provider roles of an agent."""
ROLES: tuple[Role, ...] = ("stt", "llm", "tts")


def _tag_is_required(schema: dict[str, Any]) -> None:
    """A union member's tag (`provider`, `type`) has a default for Python callers, but the API
    needs it to tell the members apart: the schema says it is required."""
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    tags = [tag for tag in ("provider", "type") if tag in properties and tag not in required]
    if tags:
        schema["required"] = [*required, *tags]


class _Spec(BaseModel):
    # JSON (the REST API) is camelCase; Python code and the stored spec use field names.
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        json_schema_extra=_tag_is_required,
    )


class _HostedSpec(_Spec):
    """A provider reached over the network: its base URL (kept without a trailing slash) and
    the name of the credential it authenticates with (None sends no key)."""

    base_url: str
    api_key_ref: str | None

    @field_validator("base_url")
    @classmethod
    def _host_and_no_trailing_slash(cls, value: str) -> str:
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 (parsing it raises for a malformed port)
        except ValueError as exc:
            raise ValueError(f"not a valid URL: {exc}") from None
        if not parts.hostname:
            raise ValueError("the URL has no host")
        return value.rstrip("/")

    def credential_name(self) -> str | None:
        """The credential this provider authenticates with; None sends no key."""
        return self.api_key_ref


def _vendor_key(vendor: str, note: str = "") -> Any:
    """The `api_key_ref` field of a vendor's spec: the vendor's own credential by default."""
    return Field(
        default=vendor,
        pattern=_CREDENTIAL_NAME,
        description=f"Name of the credential holding the API key; None sends no key{note}.",
    )


def _clause_timeout() -> Any:
    return Field(
        default=5000,
        ge=100,
        le=60_000,
        description="Longest wait for the next message of a clause before it fails.",
    )


# --- speech to text -------------------------------------------------------------------------


class WhisperStt(_Spec):
    """Offline Whisper (faster-whisper / CTranslate2), transcribing at end of each utterance."""

    provider: Literal["whisper"] = "whisper"
    model: str = Field(
        default="tiny.en",
        description="'tiny.en' (bundled) or a path to a CTranslate2 Whisper model directory.",
    )
    compute_type: Literal["int8", "int8_float32", "float32"] = "int8"
    beam_size: int = Field(
        default=3,
        ge=1,
        le=5,
        description=(
            "Beams of the decode in the encoder window (a decode redone in 30 s is greedy, "
            "unless encoderWindowS is 30)."
        ),
    )
    encoder_window_s: int = Field(
        default=10,
        ge=5,
        le=30,
        description=(
            "Seconds of audio the encoder reads per utterance: fewer than Whisper's own 30 "
            "transcribe faster; a decode that loops or is not confident is redone in 30 s."
        ),
    )
    finalize_timeout_ms: int = Field(
        default=3000,
        ge=100,
        le=30_000,
        description="With stt_fallbacks: a transcription taking longer hands over to the next.",
    )

    def stall_timeout_s(self) -> float:
        """How long a finalize may take before a fallback chain abandons this recognizer."""
        return self.finalize_timeout_ms / 1000


class ScriptedStt(_Spec):
    """Deterministic STT for tests and demos: each utterance yields the next transcript."""

    provider: Literal["scripted"] = "scripted"
    transcripts: list[str] = Field(default_factory=lambda: ["hello"], min_length=1)
    latency_ms: int = Field(default=150, ge=0, le=10_000)
    finalize_timeout_ms: int = Field(
        default=2000,
        ge=100,
        le=30_000,
        description="With stt_fallbacks: a transcription taking longer hands over to the next.",
    )

    def stall_timeout_s(self) -> float:
        """How long a finalize may take before a fallback chain abandons this recognizer."""
        return self.finalize_timeout_ms / 1000


class DeepgramStt(_HostedSpec):
    """Deepgram live streaming recognition (WebSocket /v1/listen) with interim results."""

    provider: Literal["deepgram"] = "deepgram"
    model: str = Field(default="nova-3", min_length=1, max_length=100)
    language: str | None = Field(
        default=None, max_length=20, description="Deepgram language code; the agent's if unset."
    )
    endpointing_ms: int = Field(
        default=300, ge=10, le=10_000, description="Silence after which Deepgram ends a phrase."
    )
    utterance_end_ms: int = Field(
        default=1000,
        ge=1000,
        le=5000,
        description="Word gap that raises an utterance-end event (needs interim results).",
    )
    interim_results: bool = True
    smart_format: bool = True
    punctuate: bool = True
    keepalive_interval_ms: int = Field(
        default=4000,
        ge=50,
        le=9000,
        description="KeepAlive sent after this long without audio (Deepgram closes at 10 s).",
    )
    finalize_timeout_ms: int = Field(
        default=1000,
        ge=50,
        le=10_000,
        description="Longest wait for the result of a Finalize before using the finals so far.",
    )
    connect_timeout_ms: int = Field(default=5000, ge=100, le=60_000)
    base_url: str = Field(default="wss://api.deepgram.com", pattern=_WS_BASE_URL)
    api_key_ref: str | None = _vendor_key("deepgram", " (a self-hosted Deepgram without auth)")

    def stall_timeout_s(self) -> float:
        """How long a finalize may take before a fallback chain abandons this recognizer:
        Deepgram answers by itself after `finalize_timeout_ms` (with the text heard so far),
        so the chain only gives up when even that answer does not come."""
        return (self.finalize_timeout_ms + _DEEPGRAM_STALL_GRACE_MS) / 1000


SttSpec = Annotated[WhisperStt | ScriptedStt | DeepgramStt, Field(discriminator="provider")]


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


_BASE_URL = r"^https?://[^\s/?#@]+(/[^\s?#]*)?$"
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
# Set by the provider itself: credentials go through `api_key_ref`, never a stored header.
_RESERVED_HEADERS = frozenset(
    {"authorization", "x-api-key", "content-type", "content-length", "host", "connection"}
)


def _check_extra_headers(headers: dict[str, str]) -> dict[str, str]:
    if len(headers) > 20:
        raise ValueError("at most 20 extra headers")
    for name, value in headers.items():
        if not _HEADER_NAME.match(name):
            raise ValueError(f"invalid header name {name!r}")
        if name.lower() in _RESERVED_HEADERS:
            raise ValueError(f"header {name!r} is set by voxline (name a key with apiKeyRef)")
        if len(value) > 2000 or any(char in value for char in "\r\n\0"):
            raise ValueError(f"invalid value for header {name!r}")
    return headers


class OpenAiLlm(_HostedSpec):
    """Any OpenAI-compatible Chat Completions server: OpenAI, Groq, Together, Fireworks,
    Ollama, vLLM, llama.cpp server, LM Studio (set `base_url`)."""

    provider: Literal["openai"] = "openai"
    model: str = Field(min_length=1, max_length=200)
    base_url: str = Field(default="https://api.openai.com/v1", pattern=_BASE_URL)
    api_key_ref: str | None = Field(
        default=None,
        pattern=_CREDENTIAL_NAME,
        description="Name of the credential holding the API key; 'openai' when base_url is "
        "OpenAI's own. Other servers get no key unless one is named here.",
    )
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1, le=32_768)
    first_token_timeout_ms: int = Field(default=3000, ge=100, le=120_000)
    extra_headers: dict[str, str] = Field(default_factory=dict)

    _headers = field_validator("extra_headers")(_check_extra_headers)

    def credential_name(self) -> str | None:
        """The credential this model authenticates with; None sends no key."""
        if self.api_key_ref is not None:
            return self.api_key_ref
        return "openai" if urlsplit(self.base_url).hostname == "api.openai.com" else None


class AnthropicLlm(_HostedSpec):
    """Anthropic's Messages API (Claude)."""

    provider: Literal["anthropic"] = "anthropic"
    model: str = Field(min_length=1, max_length=200)
    base_url: str = Field(default="https://api.anthropic.com", pattern=_BASE_URL)
    api_key_ref: str | None = Field(
        default=None,
        pattern=_CREDENTIAL_NAME,
        description="Name of the credential holding the API key; 'anthropic' when base_url is "
        "Anthropic's own. Other servers get no key unless one is named here.",
    )
    max_tokens: int = Field(default=1024, ge=1, le=64_000)
    temperature: float | None = Field(default=None, ge=0.0, le=1.0)
    first_token_timeout_ms: int = Field(default=3000, ge=100, le=120_000)
    prompt_caching: bool = Field(
        default=True, description="Mark the system prompt and history cacheable (faster turns)."
    )
    extra_headers: dict[str, str] = Field(default_factory=dict)

    _headers = field_validator("extra_headers")(_check_extra_headers)

    def credential_name(self) -> str | None:
        """The credential this model authenticates with; None sends no key."""
        if self.api_key_ref is not None:
            return self.api_key_ref
        return "anthropic" if urlsplit(self.base_url).hostname == "api.anthropic.com" else None


LlmSpec = Annotated[
    LlamaCppLlm | ScriptedLlm | OpenAiLlm | AnthropicLlm, Field(discriminator="provider")
]


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


class CartesiaTts(_HostedSpec):
    """Cartesia Sonic over one WebSocket per call (/tts/websocket); the clauses of one agent
    message continue one context, so prosody flows across them."""

    provider: Literal["cartesia"] = "cartesia"
    model: str = Field(default="sonic-2", min_length=1, max_length=100)
    voice_id: str = Field(min_length=1, max_length=200)
    language: str | None = Field(
        default=None, max_length=10, description="Cartesia language code; the agent's if unset."
    )
    cartesia_version: str = Field(
        default="2024-11-13",
        pattern=r"^\d{4}-\d{2}-\d{2}$",
        description="API version sent as the Cartesia-Version header.",
    )
    connect_timeout_ms: int = Field(default=5000, ge=100, le=60_000)
    response_timeout_ms: int = _clause_timeout()
    base_url: str = Field(default="wss://api.cartesia.ai", pattern=_WS_BASE_URL)
    api_key_ref: str | None = _vendor_key("cartesia")


class ElevenLabsVoiceSettings(_Spec):
    stability: float = Field(default=0.5, ge=0.0, le=1.0)
    similarity_boost: float = Field(default=0.8, ge=0.0, le=1.0)
    style: float = Field(default=0.0, ge=0.0, le=1.0)
    use_speaker_boost: bool = False
    speed: float = Field(default=1.0, ge=0.7, le=1.2)


class ElevenLabsTts(_HostedSpec):
    """ElevenLabs streaming input (WebSocket /v1/text-to-speech/{voice}/stream-input), one
    connection per clause, the next one always opened ahead."""

    provider: Literal["elevenlabs"] = "elevenlabs"
    voice_id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_-]+$")
    model: str = Field(default="eleven_flash_v2_5", min_length=1, max_length=100)
    language: str | None = Field(
        default=None,
        pattern=r"^[a-z]{2,3}$",
        description="ISO 639-1 code enforced on the model (only some models accept one).",
    )
    voice_settings: ElevenLabsVoiceSettings = Field(default_factory=ElevenLabsVoiceSettings)
    connect_timeout_ms: int = Field(default=5000, ge=100, le=60_000)
    response_timeout_ms: int = _clause_timeout()
    base_url: str = Field(default="wss://api.elevenlabs.io", pattern=_WS_BASE_URL)
    api_key_ref: str | None = _vendor_key("elevenlabs")


TtsSpec = Annotated[
    PiperTts | ScriptedTts | CartesiaTts | ElevenLabsTts, Field(discriminator="provider")
]


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
    backchannels: bool = Field(
        default=True,
        description="Tell acknowledgements said over the agent ('yeah', 'okay', 'mm-hmm') "
        "from barge-ins: the agent lowers its voice while it listens, then goes on after a "
        "backchannel and stops for anything else.",
    )
    backchannel_max_ms: int = Field(
        default=800,
        ge=200,
        le=3000,
        description="Caller speech over the agent longer than this always interrupts it.",
    )
    backchannel_phrases: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(
        default_factory=list,
        max_length=100,
        description="Phrases that count as backchannels besides the agent language's own.",
    )
    listening_volume: float = Field(
        default=0.4,
        ge=0.0,
        le=1.0,
        description="The agent's volume while it decides whether the caller is taking the "
        "turn (1 keeps it unchanged).",
    )
    peek_interval_ms: int = Field(
        default=200,
        ge=50,
        le=2000,
        description="How often the caller's words so far are checked while the agent decides.",
    )


class TurnTaking(_Spec):
    vad: Literal["silero", "energy"] = Field(
        default="silero", description="'energy' is a cheap RMS detector for benchmarks."
    )
    vad_threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    speech_start_ms: int = Field(default=60, ge=20, le=1000)
    end_of_turn_silence_ms: int = Field(default=500, ge=100, le=5000)
    min_end_of_turn_silence_ms: int = Field(
        default=250,
        ge=50,
        le=5000,
        description="Used when the transcript is clearly complete (three words or more).",
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


# --- after the call --------------------------------------------------------------------------


class CallAnalysis(_Spec):
    """What is made of a call once it has ended: a summary, fields extracted into `data`
    (checked against `data_schema`), whether it succeeded, and a memory note."""

    summary_prompt: str = Field(
        default="Summarize the call in two or three sentences: who called, what they wanted "
        "and what was agreed.",
        min_length=1,
        max_length=10_000,
    )
    data_schema: dict[str, Any] | None = Field(
        default=None,
        description="JSON Schema (draft 2020-12, type 'object') of the fields to extract.",
    )
    success_criteria: str | None = Field(
        default=None,
        max_length=10_000,
        description="When set, the call is judged against it (success: true or false).",
    )
    remember_summary: bool = Field(
        default=True, description="Add the summary to the instance's memory for its next call."
    )
    llm: LlmSpec | None = Field(
        default=None, description="The model that analyses the call; the agent's own if unset."
    )

    @field_validator("data_schema")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        try:
            Draft202012Validator.check_schema(value)
        except SchemaError as exc:
            path = "/".join(str(part) for part in exc.path) or "(root)"
            raise ValueError(f"not a valid JSON Schema at {path}: {exc.message}") from exc
        if value.get("type") != "object":
            raise ValueError("dataSchema must be a JSON Schema with type 'object'")
        remote = next(_remote_refs(value), None)
        if remote is not None:
            raise ValueError(f"only local references ('#/...') are allowed, not {remote!r}")
        return value


def _remote_refs(schema: object) -> Iterator[str]:
    """Every `$ref` in `schema` that points outside it (nothing is ever fetched)."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "$ref" and isinstance(value, str) and not value.startswith("#"):
                yield value
            else:
                yield from _remote_refs(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _remote_refs(item)


class Recording(_Spec):
    """Whether and how the agent's calls are recorded (one stereo Ogg/Opus file per call:
    caller left, agent right, as heard)."""

    enabled: bool = Field(default=False, description="Record every call of the agent.")
    bitrate_kbps: int = Field(default=32, ge=12, le=128, description="Opus bitrate (stereo).")


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
    stt_fallbacks: list[SttSpec] = Field(
        default_factory=list,
        max_length=4,
        description="Tried in order when recognition fails or stalls: the next one gets the "
        "current segment's audio again.",
    )
    llm_fallbacks: list[LlmSpec] = Field(
        default_factory=list,
        max_length=4,
        description="Tried in order when the LLM fails or stalls before it says anything.",
    )
    tts_fallbacks: list[TtsSpec] = Field(
        default_factory=list,
        max_length=4,
        description="Tried in order when speech synthesis fails before a clause's first audio.",
    )
    tools: list[ToolSpec] = Field(default_factory=list)
    turn_taking: TurnTaking = Field(default_factory=TurnTaking)
    limits: Limits = Field(default_factory=Limits)
    recording: Recording = Field(default_factory=Recording)
    webhook_url: HttpUrl | None = Field(
        default=None,
        description="Receives signed session events (session.ended, session.analyzed).",
    )
    analysis: CallAnalysis | None = Field(
        default=None, description="Summary, extracted data and memory made after each call."
    )

    def chain(self, role: Role) -> tuple[BaseModel, ...]:
        """The role's provider specs in the order they are tried: primary, then fallbacks."""
        if role == "stt":
            return (self.stt, *self.stt_fallbacks)
        if role == "llm":
            return (self.llm, *self.llm_fallbacks)
        return (self.tts, *self.tts_fallbacks)

    def provider_slots(self) -> Iterator[ProviderSlot]:
        """Every provider the agent configures, fallbacks included, role by role."""
        for role in ROLES:
            for position, spec in enumerate(self.chain(role)):
                yield ProviderSlot(role, position, spec)

    @field_validator("tools")
    @classmethod
    def _unique_tool_names(cls, tools: list[ToolSpec]) -> list[ToolSpec]:
        names = [tool.name for tool in tools]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"tool names must be unique: {', '.join(duplicates)}")
        return tools

    def outbound_urls(self) -> list[tuple[str, str]]:
        """Every URL the server connects to for this agent, with its field as the API spells
        it, dotted like validation errors (`llm.baseUrl`, `ttsFallbacks.0.baseUrl`,
        `tools.1.url`, `webhookUrl`)."""
        urls: list[tuple[str, str]] = []
        for name in ("stt", "llm", "tts"):
            fallbacks = getattr(self, f"{name}_fallbacks")
            chain = [(name, getattr(self, name))] + [
                (f"{name}Fallbacks.{index}", spec) for index, spec in enumerate(fallbacks)
            ]
            urls += [
                (f"{where}.baseUrl", spec.base_url)
                for where, spec in chain
                if isinstance(spec, _HostedSpec)
            ]
        urls += [
            (f"tools.{index}.url", str(tool.url))
            for index, tool in enumerate(self.tools)
            if isinstance(tool, WebhookTool)
        ]
        if self.webhook_url is not None:
            urls.append(("webhookUrl", str(self.webhook_url)))
        return urls


@dataclass(frozen=True, slots=True)
class ProviderSlot:
    """One provider of an agent: its role, its place in the role's chain (0 is the primary,
    then the fallbacks in order) and its spec."""

    role: Role
    position: int
    spec: BaseModel


def placeholders(template: str) -> set[str]:
    """The variable names a `{{variable}}` template refers to."""
    return set(_PLACEHOLDER.findall(template))


def fill_placeholders(template: str, variables: dict[str, str]) -> str:
    """Replace `{{name}}` with its value; unknown names become empty, never left as braces."""
    return _PLACEHOLDER.sub(lambda match: variables.get(match.group(1), ""), template)
