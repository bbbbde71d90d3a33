"""The browser session wire protocol: client messages parsed and checked, events rendered."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from voxline.runtime.events import CALL_EVENT, SessionEnded
from voxline.transports.browser_protocol import (
    MAX_FRAME_BYTES,
    AudioMessage,
    BrowserProtocolError,
    EndMessage,
    InterruptMessage,
    MarkMessage,
    StartMessage,
    TextMessage,
    decode_audio_frame,
    decode_audio_message,
    event_message,
    parse_client_text,
    server_message,
)


def test_start_defaults_to_16_khz_without_instance_or_variables() -> None:
    message = parse_client_text('{"type": "start"}')
    assert message == StartMessage(type="start", sample_rate=16000, instance_id=None)
    assert isinstance(message, StartMessage) and message.variables == {}


def test_start_reads_camel_case_fields() -> None:
    raw = json.dumps(
        {"type": "start", "sampleRate": 48000, "instanceId": "inst_1", "variables": {"a": "b"}}
    )
    message = parse_client_text(raw)
    assert isinstance(message, StartMessage)
    assert (message.sample_rate, message.instance_id, message.variables) == (
        48000,
        "inst_1",
        {"a": "b"},
    )


@pytest.mark.parametrize("rate", [8000, 44100, "16000"])
def test_start_refuses_other_sample_rates(rate: object) -> None:
    with pytest.raises(BrowserProtocolError, match="sampleRate"):
        parse_client_text(json.dumps({"type": "start", "sampleRate": rate}))


def test_start_refuses_variable_names_that_are_not_placeholders() -> None:
    with pytest.raises(BrowserProtocolError, match="variables"):
        parse_client_text(json.dumps({"type": "start", "variables": {"not a name": "x"}}))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"type": "text", "text": "hi"}', TextMessage(type="text", text="hi")),
        ('{"type": "mark", "name": "r1.c2"}', MarkMessage(type="mark", name="r1.c2")),
        ('{"type": "interrupt"}', InterruptMessage(type="interrupt")),
        ('{"type": "end", "reason": "ignored"}', EndMessage(type="end")),
        ('{"type": "audio", "data": "AAA="}', AudioMessage(type="audio", data="AAA=")),
    ],
)
def test_client_messages_are_parsed_by_type(raw: str, expected: object) -> None:
    assert parse_client_text(raw) == expected


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("not json", "must be a JSON object"),
        ("[1, 2]", "must be a JSON object"),
        ('{"text": "hi"}', "needs a 'type'"),
        ('{"type": 3}', "needs a 'type'"),
        ('{"type": "dance"}', "unknown message type 'dance'"),
        ('{"type": "text", "text": ""}', "invalid text message: text"),
        ('{"type": "mark"}', "invalid mark message: name"),
    ],
)
def test_bad_client_messages_say_what_is_wrong(raw: str, error: str) -> None:
    with pytest.raises(BrowserProtocolError, match=error):
        parse_client_text(raw)


def test_oversized_text_frames_are_refused() -> None:
    raw = json.dumps({"type": "text", "text": "x" * MAX_FRAME_BYTES})
    with pytest.raises(BrowserProtocolError, match="too large"):
        parse_client_text(raw)


def test_binary_frames_are_little_endian_pcm16() -> None:
    pcm = decode_audio_frame(np.array([1, -2, 32767], dtype="<i2").tobytes())
    assert pcm.dtype == np.int16
    assert pcm.tolist() == [1, -2, 32767]


@pytest.mark.parametrize(
    ("raw", "error"), [(b"\x00\x01\x02", "even number"), (bytes(MAX_FRAME_BYTES + 2), "large")]
)
def test_bad_binary_frames_are_refused(raw: bytes, error: str) -> None:
    with pytest.raises(BrowserProtocolError, match=error):
        decode_audio_frame(raw)


def test_base64_audio_decodes_like_a_binary_frame() -> None:
    data = base64.b64encode(np.array([5, -5], dtype="<i2").tobytes()).decode()
    assert decode_audio_message(AudioMessage(type="audio", data=data)).tolist() == [5, -5]


def test_audio_that_is_not_base64_is_refused() -> None:
    with pytest.raises(BrowserProtocolError, match="base64"):
        decode_audio_message(AudioMessage(type="audio", data="***"))


def test_server_messages_camel_case_top_level_keys_only() -> None:
    text = server_message("tool.call", tool_id="t1", arguments={"snake_key": 1})
    assert json.loads(text) == {"type": "tool.call", "toolId": "t1", "arguments": {"snake_key": 1}}


def test_call_events_are_their_own_camel_case_json() -> None:
    event = SessionEnded(reason="caller_hangup", duration_ms=5, seq=9, at_ms=120)
    assert json.loads(event_message(event)) == {
        "seq": 9,
        "atMs": 120,
        "type": "session.ended",
        "reason": "caller_hangup",
        "firstResponseMs": None,
        "durationMs": 5,
        "error": None,
    }
    assert CALL_EVENT.validate_json(event_message(event)) == event


def test_deeply_nested_json_is_a_protocol_error() -> None:
    with pytest.raises(BrowserProtocolError, match="JSON object"):
        parse_client_text("[" * 50_000 + "]" * 50_000)
