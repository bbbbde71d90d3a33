"""Reading the TwiML a server answers a call with."""

import pytest

from voxline.simulator.dial import DialError, parse_connect_twiml
from voxline.telephony.twilio.twiml import connect_stream_twiml, say_and_hangup_twiml


def test_connect_twiml_gives_the_stream_url_and_relay_token() -> None:
    twiml = connect_stream_twiml("wss://example.com/v1/sessions/twilio/stream", {"relay": "t.s"})
    assert parse_connect_twiml(twiml) == ("wss://example.com/v1/sessions/twilio/stream", "t.s")


def test_a_spoken_refusal_is_an_error_that_quotes_it() -> None:
    with pytest.raises(DialError, match="not available"):
        parse_connect_twiml(say_and_hangup_twiml("Sorry, this number is not available."))


def test_an_answer_that_is_not_xml_is_an_error() -> None:
    with pytest.raises(DialError, match="not TwiML"):
        parse_connect_twiml("<html")
