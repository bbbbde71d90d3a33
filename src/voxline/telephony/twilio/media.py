"""The Twilio Media Streams wire format: typed messages, strict parsers and JSON builders.

Both directions live here so that the server and the simulated Twilio peer share one truth:
Twilio sends connected, start, media, dtmf, mark and stop; the server sends media, mark and
clear. Payloads are raw mu-law bytes (8 kHz mono); base64 is handled here, the mu-law codec
lives in `voxline.audio.mulaw`. Parsers raise `MalformedMessage` or `UnknownEvent`, never
anything else, so one bad frame can be logged and skipped without ending the call.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

MULAW_ENCODING = "audio/x-mulaw"
SAMPLE_RATE = 8000
DTMF_DIGITS = frozenset("0123456789*#ABCD")
# Counters fit in 64 bits; a longer digit string is garbage (and slow to convert).
_MAX_INT_DIGITS = 20


class MediaStreamError(ValueError):
    """A media-stream message could not be understood."""


class MalformedMessage(MediaStreamError):
    """Not JSON, not an object, or a known event with missing or mistyped fields."""


class UnknownEvent(MediaStreamError):
    """A well-formed message whose `event` this side does not know (safe to ignore)."""

    def __init__(self, event: str) -> None:
        super().__init__(f"unknown media-stream event {event!r}")
        self.event = event


# --- Twilio -> server -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MediaFormat:
    encoding: str = MULAW_ENCODING
    sample_rate: int = SAMPLE_RATE
    channels: int = 1


@dataclass(frozen=True, slots=True)
class ConnectedMessage:
    protocol: str
    version: str


@dataclass(frozen=True, slots=True)
class StartMessage:
    sequence_number: int
    stream_sid: str
    account_sid: str
    call_sid: str
    tracks: tuple[str, ...]
    media_format: MediaFormat
    custom_parameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MediaMessage:
    sequence_number: int
    stream_sid: str
    track: str
    chunk: int
    timestamp: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class DtmfMessage:
    sequence_number: int
    stream_sid: str
    track: str
    digit: str


@dataclass(frozen=True, slots=True)
class MarkMessage:
    """A mark echoed by Twilio: the audio sent before it has been played (or cleared)."""

    sequence_number: int
    stream_sid: str
    name: str


@dataclass(frozen=True, slots=True)
class StopMessage:
    sequence_number: int
    stream_sid: str
    account_sid: str
    call_sid: str


InboundMessage = (
    ConnectedMessage | StartMessage | MediaMessage | DtmfMessage | MarkMessage | StopMessage
)


def parse_inbound(raw: str | bytes) -> InboundMessage:
    """Parse one text frame Twilio sent; raises `MalformedMessage` or `UnknownEvent`."""
    msg = _load(raw)
    event = _str(msg, "event")
    if event == "media":
        media = _obj(msg, "media")
        return MediaMessage(
            sequence_number=_int(msg, "sequenceNumber"),
            stream_sid=_str(msg, "streamSid"),
            track=_str(media, "track"),
            chunk=_int(media, "chunk"),
            timestamp=_int(media, "timestamp"),
            payload=_payload(media),
        )
    if event == "mark":
        return MarkMessage(
            sequence_number=_int(msg, "sequenceNumber"),
            stream_sid=_str(msg, "streamSid"),
            name=_str(_obj(msg, "mark"), "name"),
        )
    if event == "start":
        return _parse_start(msg)
    if event == "dtmf":
        dtmf = _obj(msg, "dtmf")
        digit = _str(dtmf, "digit")
        if digit not in DTMF_DIGITS:
            raise MalformedMessage(f"dtmf digit {digit!r} is not one of 0-9, *, #, A-D")
        return DtmfMessage(
            sequence_number=_int(msg, "sequenceNumber"),
            stream_sid=_str(msg, "streamSid"),
            track=_str(dtmf, "track"),
            digit=digit,
        )
    if event == "stop":
        stop = _obj(msg, "stop")
        return StopMessage(
            sequence_number=_int(msg, "sequenceNumber"),
            stream_sid=_str(msg, "streamSid"),
            account_sid=_str(stop, "accountSid"),
            call_sid=_str(stop, "callSid"),
        )
    if event == "connected":
        return ConnectedMessage(protocol=_str(msg, "protocol"), version=_str(msg, "version"))
    raise UnknownEvent(event)


def _parse_start(msg: dict[str, Any]) -> StartMessage:
    start = _obj(msg, "start")
    fmt = _obj(start, "mediaFormat")
    tracks = start.get("tracks", ["inbound"])
    if not isinstance(tracks, list) or not all(isinstance(t, str) for t in tracks):
        raise MalformedMessage("start.tracks must be a list of strings")
    params = start.get("customParameters", {})
    if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
        raise MalformedMessage("start.customParameters must be an object of strings")
    return StartMessage(
        sequence_number=_int(msg, "sequenceNumber"),
        stream_sid=_str(msg, "streamSid"),
        account_sid=_str(start, "accountSid"),
        call_sid=_str(start, "callSid"),
        tracks=tuple(tracks),
        media_format=MediaFormat(
            encoding=_str(fmt, "encoding"),
            sample_rate=_int(fmt, "sampleRate"),
            channels=_int(fmt, "channels"),
        ),
        custom_parameters=dict(params),
    )


def media_json(stream_sid: str, payload: bytes) -> str:
    """Server -> Twilio: play `payload` (mu-law 8 kHz bytes) after what is already buffered."""
    encoded = base64.b64encode(payload).decode("ascii")
    return f'{{"event":"media","streamSid":{_q(stream_sid)},"media":{{"payload":"{encoded}"}}}}'


def mark_json(stream_sid: str, name: str) -> str:
    """Server -> Twilio: ask for `name` to be echoed once the audio before it has played."""
    return f'{{"event":"mark","streamSid":{_q(stream_sid)},"mark":{{"name":{_q(name)}}}}}'


def clear_json(stream_sid: str) -> str:
    """Server -> Twilio: drop all buffered audio; pending marks are echoed at once."""
    return f'{{"event":"clear","streamSid":{_q(stream_sid)}}}'


# --- server -> Twilio, as Twilio (or the simulator) reads it --------------------------------


@dataclass(frozen=True, slots=True)
class OutboundMedia:
    stream_sid: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class OutboundMark:
    stream_sid: str
    name: str


@dataclass(frozen=True, slots=True)
class OutboundClear:
    stream_sid: str


OutboundMessage = OutboundMedia | OutboundMark | OutboundClear


def parse_outbound(raw: str | bytes) -> OutboundMessage:
    """Parse one text frame the server sent; raises `MalformedMessage` or `UnknownEvent`."""
    msg = _load(raw)
    event = _str(msg, "event")
    if event == "media":
        return OutboundMedia(stream_sid=_str(msg, "streamSid"), payload=_payload(_obj(msg, event)))
    if event == "mark":
        return OutboundMark(stream_sid=_str(msg, "streamSid"), name=_str(_obj(msg, event), "name"))
    if event == "clear":
        return OutboundClear(stream_sid=_str(msg, "streamSid"))
    raise UnknownEvent(event)


# --- Twilio -> server, as the simulated Twilio peer writes it --------------------------------


def connected_json() -> str:
    return '{"event":"connected","protocol":"Call","version":"1.0.0"}'


def start_json(
    sequence_number: int,
    stream_sid: str,
    account_sid: str,
    call_sid: str,
    custom_parameters: dict[str, str],
    tracks: Sequence[str] = ("inbound",),
    media_format: MediaFormat | None = None,
) -> str:
    fmt = media_format or MediaFormat()
    return json.dumps(
        {
            "event": "start",
            "sequenceNumber": str(sequence_number),
            "streamSid": stream_sid,
            "start": {
                "accountSid": account_sid,
                "streamSid": stream_sid,
                "callSid": call_sid,
                "tracks": list(tracks),
                "customParameters": custom_parameters,
                "mediaFormat": {
                    "encoding": fmt.encoding,
                    "sampleRate": fmt.sample_rate,
                    "channels": fmt.channels,
                },
            },
        },
        separators=(",", ":"),
    )


def inbound_media_json(
    sequence_number: int,
    stream_sid: str,
    chunk: int,
    timestamp_ms: int,
    payload: bytes,
    track: str = "inbound",
) -> str:
    encoded = base64.b64encode(payload).decode("ascii")
    return (
        f'{{"event":"media","sequenceNumber":"{sequence_number}","streamSid":{_q(stream_sid)},'
        f'"media":{{"track":{_q(track)},"chunk":"{chunk}","timestamp":"{timestamp_ms}",'
        f'"payload":"{encoded}"}}}}'
    )


def dtmf_json(sequence_number: int, stream_sid: str, digit: str) -> str:
    if digit not in DTMF_DIGITS:
        raise ValueError(f"dtmf digit {digit!r} is not one of 0-9, *, #, A-D")
    return (
        f'{{"event":"dtmf","sequenceNumber":"{sequence_number}","streamSid":{_q(stream_sid)},'
        f'"dtmf":{{"track":"inbound_track","digit":"{digit}"}}}}'
    )


def mark_echo_json(sequence_number: int, stream_sid: str, name: str) -> str:
    return (
        f'{{"event":"mark","sequenceNumber":"{sequence_number}","streamSid":{_q(stream_sid)},'
        f'"mark":{{"name":{_q(name)}}}}}'
    )


def stop_json(sequence_number: int, stream_sid: str, account_sid: str, call_sid: str) -> str:
    return (
        f'{{"event":"stop","sequenceNumber":"{sequence_number}","streamSid":{_q(stream_sid)},'
        f'"stop":{{"accountSid":{_q(account_sid)},"callSid":{_q(call_sid)}}}}}'
    )


# --- field access with precise errors --------------------------------------------------------


def _q(value: str) -> str:
    return json.dumps(value)


def _load(raw: str | bytes) -> dict[str, Any]:
    try:
        msg = json.loads(raw)
    except (ValueError, TypeError, RecursionError) as exc:
        raise MalformedMessage(f"not JSON: {exc}") from None
    if not isinstance(msg, dict):
        raise MalformedMessage(f"expected a JSON object, got {type(msg).__name__}")
    return msg


def _obj(msg: dict[str, Any], key: str) -> dict[str, Any]:
    value = msg.get(key)
    if not isinstance(value, dict):
        raise MalformedMessage(f"{key!r} must be an object")
    return value


def _str(msg: dict[str, Any], key: str) -> str:
    value = msg.get(key)
    if not isinstance(value, str):
        raise MalformedMessage(f"{key!r} must be a string")
    return value


def _int(msg: dict[str, Any], key: str) -> int:
    """Twilio sends counters as decimal strings and format numbers as numbers; take both."""
    value = msg.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if (
        isinstance(value, str)
        and value.isascii()
        and value.isdigit()
        and len(value) <= _MAX_INT_DIGITS
    ):
        return int(value)
    raise MalformedMessage(f"{key!r} must be a non-negative integer, got {value!r}")


def _payload(media: dict[str, Any]) -> bytes:
    try:
        return base64.b64decode(_str(media, "payload"), validate=True)
    except (binascii.Error, ValueError) as exc:  # ValueError: non-ASCII text
        raise MalformedMessage(f"media payload is not base64: {exc}") from None
