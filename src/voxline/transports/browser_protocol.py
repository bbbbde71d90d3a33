"""The browser session wire protocol (docs/browser-protocol.md): client messages parsed and
checked, server messages rendered.

Text frames carry JSON objects with a `type`; binary frames carry PCM16 little-endian mono
audio at the rate the client declared in `start`. Keys are camelCase on the wire.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel

from voxline.audio.frames import pcm16_from_bytes
from voxline.audio.pcm import Pcm16
from voxline.runtime.events import CallEvent

SampleRate = Literal[16000, 24000, 48000]
SAMPLE_RATES: tuple[int, ...] = get_args(SampleRate)
DEFAULT_SAMPLE_RATE: SampleRate = 16000
MAX_FRAME_BYTES = 128 * 1024
"""Largest frame accepted either way it is sent (about 1.3 s of 48 kHz audio as binary);
clients send 20 to 100 ms frames."""
MAX_TEXT_CHARS = 2000
MAX_VARIABLES = 20

VariableName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
VariableValue = Annotated[str, StringConstraints(max_length=500)]
Variables = Annotated[dict[VariableName, VariableValue], Field(max_length=MAX_VARIABLES)]


class BrowserProtocolError(ValueError):
    """A client message that breaks the protocol; the message is safe to send back."""


class _Message(BaseModel):
    # Unknown fields are ignored so that newer clients keep working with this server.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class StartMessage(_Message):
    """The first message: audio format, and optionally an instance and variables."""

    type: Literal["start"]
    instance_id: str | None = Field(default=None, min_length=1, max_length=100)
    sample_rate: SampleRate = DEFAULT_SAMPLE_RATE
    variables: Variables = Field(default_factory=dict)


class AudioMessage(_Message):
    """Caller audio for clients that cannot send binary frames: base64 PCM16."""

    type: Literal["audio"]
    data: str


class TextMessage(_Message):
    """Typed caller input, answered like speech."""

    type: Literal["text"]
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)


class InterruptMessage(_Message):
    type: Literal["interrupt"]


class MarkMessage(_Message):
    """The echo of a server `mark`: playback has reached it."""

    type: Literal["mark"]
    name: str = Field(min_length=1, max_length=100)


class EndMessage(_Message):
    type: Literal["end"]


ClientMessage = (
    StartMessage | AudioMessage | TextMessage | InterruptMessage | MarkMessage | EndMessage
)
_CLIENT_MESSAGE: TypeAdapter[ClientMessage] = TypeAdapter(
    Annotated[ClientMessage, Field(discriminator="type")]
)
_TYPES = "start, audio, text, interrupt, mark, end"


def parse_client_text(raw: str) -> ClientMessage:
    """A client's JSON text frame as a message; `BrowserProtocolError` says what is wrong."""
    if len(raw) > MAX_FRAME_BYTES:
        raise BrowserProtocolError(f"frame too large: at most {MAX_FRAME_BYTES} bytes")
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: deeply nested arrays or objects
        raise BrowserProtocolError("a text frame must be a JSON object") from None
    if not isinstance(payload, dict):
        raise BrowserProtocolError("a text frame must be a JSON object")
    kind = payload.get("type")
    if not isinstance(kind, str):
        raise BrowserProtocolError(f"a message needs a 'type' (one of {_TYPES})")
    try:
        return _CLIENT_MESSAGE.validate_python(payload)
    except ValidationError as exc:
        raise BrowserProtocolError(_describe(kind, exc)) from None


def decode_audio_frame(raw: bytes) -> Pcm16:
    """A binary frame's PCM16 samples."""
    if len(raw) > MAX_FRAME_BYTES:
        raise BrowserProtocolError(f"frame too large: at most {MAX_FRAME_BYTES} bytes")
    if len(raw) % 2:
        raise BrowserProtocolError("audio must be PCM16: an even number of bytes")
    return pcm16_from_bytes(raw)


def decode_audio_message(message: AudioMessage) -> Pcm16:
    """An `audio` message's base64 PCM16 samples."""
    try:
        raw = base64.b64decode(message.data, validate=True)
    except (binascii.Error, ValueError):
        raise BrowserProtocolError("audio data must be base64") from None
    return decode_audio_frame(raw)


def server_message(type_: str, **data: Any) -> str:
    """A server event as JSON text; keys are camelCased (values are left as they are)."""
    payload = {"type": type_, **{to_camel(key): value for key, value in data.items()}}
    return json.dumps(payload, separators=(",", ":"), default=str)


def event_message(event: CallEvent) -> str:
    """A call event as the client sees it: the event's own camelCase JSON."""
    return event.model_dump_json(by_alias=True)


def _describe(kind: str, exc: ValidationError) -> str:
    error = exc.errors()[0]
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return f"unknown message type {kind[:40]!r}: expected one of {_TYPES}"
    field = ".".join(str(part) for part in error["loc"][1:])
    where = f" {field}" if field else ""
    return f"invalid {kind} message:{where} {error['msg']}"
