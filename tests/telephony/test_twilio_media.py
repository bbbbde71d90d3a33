import base64
import json

import pytest

from voxline.telephony.twilio.media import (
    ConnectedMessage,
    DtmfMessage,
    MalformedMessage,
    MarkMessage,
    MediaFormat,
    MediaMessage,
    OutboundClear,
    OutboundMark,
    OutboundMedia,
    StartMessage,
    StopMessage,
    UnknownEvent,
    clear_json,
    connected_json,
    dtmf_json,
    inbound_media_json,
    mark_echo_json,
    mark_json,
    media_json,
    parse_inbound,
    parse_outbound,
    start_json,
    stop_json,
)

SID = "MZ" + "a" * 32
CALL = "CA" + "b" * 32
ACCOUNT = "AC" + "c" * 32
PAYLOAD = bytes(range(160))


def _dump(message: dict[str, object]) -> str:
    return json.dumps(message)


def test_parses_connected() -> None:
    raw = '{"event":"connected","protocol":"Call","version":"1.0.0"}'
    assert parse_inbound(raw) == ConnectedMessage(protocol="Call", version="1.0.0")


def test_parses_start_as_twilio_documents_it() -> None:
    raw = _dump(
        {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": SID,
            "start": {
                "accountSid": ACCOUNT,
                "streamSid": SID,
                "callSid": CALL,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": {"relay": "tok.sig"},
            },
        }
    )
    assert parse_inbound(raw) == StartMessage(
        sequence_number=1,
        stream_sid=SID,
        account_sid=ACCOUNT,
        call_sid=CALL,
        tracks=("inbound",),
        media_format=MediaFormat("audio/x-mulaw", 8000, 1),
        custom_parameters={"relay": "tok.sig"},
    )


def test_parses_media_and_decodes_its_payload() -> None:
    raw = _dump(
        {
            "event": "media",
            "sequenceNumber": "4",
            "streamSid": SID,
            "media": {
                "track": "inbound",
                "chunk": "2",
                "timestamp": "5",
                "payload": base64.b64encode(PAYLOAD).decode(),
            },
        }
    )
    assert parse_inbound(raw) == MediaMessage(4, SID, "inbound", 2, 5, PAYLOAD)


def test_parses_dtmf() -> None:
    raw = _dump(
        {
            "event": "dtmf",
            "sequenceNumber": "5",
            "streamSid": SID,
            "dtmf": {"track": "inbound_track", "digit": "#"},
        }
    )
    assert parse_inbound(raw) == DtmfMessage(5, SID, "inbound_track", "#")


def test_parses_mark_echo() -> None:
    raw = _dump({"event": "mark", "sequenceNumber": "6", "streamSid": SID, "mark": {"name": "m1"}})
    assert parse_inbound(raw) == MarkMessage(6, SID, "m1")


def test_parses_stop() -> None:
    raw = _dump(
        {
            "event": "stop",
            "sequenceNumber": "7",
            "streamSid": SID,
            "stop": {"accountSid": ACCOUNT, "callSid": CALL},
        }
    )
    assert parse_inbound(raw) == StopMessage(7, SID, ACCOUNT, CALL)


def test_parses_bytes_frames() -> None:
    raw = b'{"event":"connected","protocol":"Call","version":"1.0.0"}'
    assert isinstance(parse_inbound(raw), ConnectedMessage)


def test_twilio_side_builders_parse_back() -> None:
    messages = [
        connected_json(),
        start_json(1, SID, ACCOUNT, CALL, {"relay": "x"}),
        inbound_media_json(2, SID, chunk=1, timestamp_ms=0, payload=PAYLOAD),
        dtmf_json(3, SID, "7"),
        mark_echo_json(4, SID, 'quote"name'),
        stop_json(5, SID, ACCOUNT, CALL),
    ]
    parsed = [parse_inbound(raw) for raw in messages]
    assert [type(message) for message in parsed] == [
        ConnectedMessage,
        StartMessage,
        MediaMessage,
        DtmfMessage,
        MarkMessage,
        StopMessage,
    ]
    assert parsed[2] == MediaMessage(2, SID, "inbound", 1, 0, PAYLOAD)
    assert parsed[4] == MarkMessage(4, SID, 'quote"name')


def test_outbound_media_has_twilio_shape() -> None:
    assert json.loads(media_json(SID, PAYLOAD)) == {
        "event": "media",
        "streamSid": SID,
        "media": {"payload": base64.b64encode(PAYLOAD).decode()},
    }


def test_outbound_mark_and_clear_have_twilio_shape() -> None:
    assert json.loads(mark_json(SID, "seg-1")) == {
        "event": "mark",
        "streamSid": SID,
        "mark": {"name": "seg-1"},
    }
    assert json.loads(clear_json(SID)) == {"event": "clear", "streamSid": SID}


def test_outbound_messages_parse_back() -> None:
    assert parse_outbound(media_json(SID, PAYLOAD)) == OutboundMedia(SID, PAYLOAD)
    assert parse_outbound(mark_json(SID, "a\\b")) == OutboundMark(SID, "a\\b")
    assert parse_outbound(clear_json(SID)) == OutboundClear(SID)


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "",
        "[1, 2]",
        "[" * 100_000,
        '{"event": 3}',
        '{"protocol": "Call"}',
        '{"event":"media","sequenceNumber":"4","media":{"track":"inbound","chunk":"1",'
        '"timestamp":"0","payload":"AAAA"}}',
        '{"event":"media","sequenceNumber":"4","streamSid":"MZ","media":{"track":"inbound",'
        '"chunk":"1","timestamp":"0","payload":"not base64!"}}',
        '{"event":"media","sequenceNumber":"-4","streamSid":"MZ","media":{"track":"inbound",'
        '"chunk":"1","timestamp":"0","payload":"AAAA"}}',
        '{"event":"media","sequenceNumber":"4","streamSid":"MZ","media":"AAAA"}',
        '{"event":"dtmf","sequenceNumber":"5","streamSid":"MZ","dtmf":{"track":"inbound_track",'
        '"digit":"12"}}',
        '{"event":"mark","sequenceNumber":"6","streamSid":"MZ","mark":{}}',
        '{"event":"start","sequenceNumber":"1","streamSid":"MZ","start":{"accountSid":"AC",'
        '"callSid":"CA","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw",'
        '"sampleRate":8000,"channels":1},"customParameters":{"relay":5}}}',
        '{"event":"start","sequenceNumber":"1","streamSid":"MZ","start":{"accountSid":"AC",'
        '"callSid":"CA","tracks":["inbound"]}}',
        '{"event":"stop","sequenceNumber":"7","streamSid":"MZ"}',
    ],
)
def test_malformed_inbound_message_raises_malformed_message(raw: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_inbound(raw)


@pytest.mark.parametrize(
    "raw",
    [
        '{"event":"media","sequenceNumber":"3","streamSid":"MZ","media":{"track":"inbound",'
        '"chunk":"1","timestamp":"20","payload":"\u00e9t\u00e9"}}',
        '{"event":"media","sequenceNumber":"' + "9" * 5000 + '","streamSid":"MZ","media":'
        '{"track":"inbound","chunk":"1","timestamp":"20","payload":""}}',
        "[" * 100_000 + "]" * 100_000,
        b"\xff\x00binary",
    ],
    ids=["non_ascii_payload", "huge_counter", "deep_nesting", "not_utf8"],
)
def test_hostile_inbound_frames_are_malformed_messages(raw: str | bytes) -> None:
    with pytest.raises(MalformedMessage):
        parse_inbound(raw)


def test_unknown_inbound_event_names_the_event() -> None:
    with pytest.raises(UnknownEvent) as caught:
        parse_inbound('{"event":"transcription","streamSid":"MZ"}')
    assert caught.value.event == "transcription"


def test_unknown_outbound_event_raises_unknown_event() -> None:
    with pytest.raises(UnknownEvent):
        parse_outbound('{"event":"start","streamSid":"MZ"}')


def test_malformed_outbound_media_raises_malformed_message() -> None:
    with pytest.raises(MalformedMessage):
        parse_outbound('{"event":"media","streamSid":"MZ","media":{"payload":"@@"}}')


def test_dtmf_builder_refuses_a_digit_twilio_cannot_send() -> None:
    with pytest.raises(ValueError, match="dtmf digit"):
        dtmf_json(1, SID, "x")
