"""TwiML documents voxline answers Twilio with, rendered by the official `twilio` library.

`connect_stream_twiml` bridges the call to our media-stream WebSocket; `say_and_hangup_twiml`
is the answer whenever we cannot connect the call (a caller must never hear silence).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from twilio.twiml.voice_response import Connect, VoiceResponse

# Twilio documents that a <Parameter>'s name plus value must stay under 500 characters.
MAX_PARAMETER_CHARS = 500


def connect_stream_twiml(stream_url: str, parameters: dict[str, str]) -> str:
    """`<Connect><Stream url=...>` with one `<Parameter>` per entry, in the given order.

    Raises ValueError for a URL that is not ws(s):// or carries a query string or fragment
    (Twilio strips them), and for a parameter whose name plus value reaches 500 characters.
    """
    _check_stream_url(stream_url)
    for name, value in parameters.items():
        _check_parameter(name, value)
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=stream_url)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    response.append(connect)
    return str(response)


def say_and_hangup_twiml(message: str) -> str:
    """`<Say>message</Say><Hangup/>`: tell the caller why, then end the call."""
    if not message.strip():
        raise ValueError("say_and_hangup_twiml needs a non-empty message: callers must hear why")
    response = VoiceResponse()
    response.say(message)
    response.hangup()
    return str(response)


def _check_stream_url(stream_url: str) -> None:
    parts = urlsplit(stream_url)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"stream URL must start with wss:// or ws://, got {stream_url!r}")
    if not parts.netloc:
        raise ValueError(f"stream URL has no host: {stream_url!r}")
    if parts.query or parts.fragment or "?" in stream_url or "#" in stream_url:
        raise ValueError(
            "stream URL must not carry a query string or fragment (Twilio strips them); "
            f"pass values as parameters instead: {stream_url!r}"
        )


def _check_parameter(name: str, value: str) -> None:
    if not name:
        raise ValueError("stream parameter names must be non-empty")
    size = len(name) + len(value)
    if size >= MAX_PARAMETER_CHARS:
        raise ValueError(
            f"stream parameter {name!r} is {size} characters (name + value); "
            f"Twilio requires fewer than {MAX_PARAMETER_CHARS}"
        )
