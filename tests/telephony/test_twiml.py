import xml.etree.ElementTree as ET

import pytest
from twilio.twiml.voice_response import Connect, VoiceResponse

from voxline.telephony.twilio.twiml import connect_stream_twiml, say_and_hangup_twiml

STREAM_URL = "wss://voice.example.com/v1/sessions/twilio/stream"


def _official_connect(url: str, parameters: dict[str, str]) -> str:
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=url)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    response.append(connect)
    return str(response)


def _shape(xml: str) -> list[tuple[str, dict[str, str], str | None]]:
    return [(el.tag, dict(el.attrib), el.text) for el in ET.fromstring(xml).iter()]


def test_connect_stream_renders_what_the_official_library_renders() -> None:
    params = {"relay": "abc.def", "lang": "en"}
    ours = connect_stream_twiml(STREAM_URL, params)
    assert ours == _official_connect(STREAM_URL, params)
    assert _shape(ours) == [
        ("Response", {}, None),
        ("Connect", {}, None),
        ("Stream", {"url": STREAM_URL}, None),
        ("Parameter", {"name": "relay", "value": "abc.def"}, None),
        ("Parameter", {"name": "lang", "value": "en"}, None),
    ]


def test_connect_stream_escapes_parameter_values() -> None:
    value = 'a&b<c>"d'
    root = ET.fromstring(connect_stream_twiml(STREAM_URL, {"relay": value}))
    parameter = root.find("./Connect/Stream/Parameter")
    assert parameter is not None
    assert parameter.get("value") == value


def test_connect_stream_accepts_plain_ws_for_local_development() -> None:
    url = "ws://127.0.0.1:8000/v1/sessions/twilio/stream"
    assert f'url="{url}"' in connect_stream_twiml(url, {})


@pytest.mark.parametrize(
    "url",
    [
        "wss://voice.example.com/stream?token=1",
        "wss://voice.example.com/stream?",
        "wss://voice.example.com/stream#frag",
    ],
)
def test_connect_stream_rejects_a_query_string_or_fragment(url: str) -> None:
    with pytest.raises(ValueError, match="query string"):
        connect_stream_twiml(url, {})


@pytest.mark.parametrize("url", ["https://voice.example.com/stream", "voice.example.com/stream"])
def test_connect_stream_rejects_a_scheme_other_than_ws(url: str) -> None:
    with pytest.raises(ValueError, match="wss://"):
        connect_stream_twiml(url, {})


def test_parameter_of_499_characters_is_accepted() -> None:
    value = "x" * (499 - len("relay"))
    assert value in connect_stream_twiml(STREAM_URL, {"relay": value})


def test_parameter_of_500_characters_is_rejected() -> None:
    with pytest.raises(ValueError, match="fewer than 500"):
        connect_stream_twiml(STREAM_URL, {"relay": "x" * (500 - len("relay"))})


def test_say_and_hangup_says_the_message_then_hangs_up() -> None:
    xml = say_and_hangup_twiml("Sorry, this number is not available.")
    official = VoiceResponse()
    official.say("Sorry, this number is not available.")
    official.hangup()
    assert xml == str(official)
    assert [el.tag for el in ET.fromstring(xml)] == ["Say", "Hangup"]


def test_say_and_hangup_refuses_an_empty_message() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        say_and_hangup_twiml("  ")
