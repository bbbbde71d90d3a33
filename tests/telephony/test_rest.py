import asyncio
import logging
import socket
from collections import Counter

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from tests.fakes.twilio_api import FakeTwilioApi, RecordedRequest
from voxline.telephony.twilio.rest import CallInfo, TwilioApiError, TwilioRestClient, dial_twiml

CALLBACK = "https://voice.example.com/v1/sessions/twilio/task/task_1/status"
CONNECT_URL = "https://voice.example.com/v1/sessions/twilio/task/task_1/connect"
EVENTS = ["initiated", "ringing", "answered", "completed"]


def _ours(api: FakeTwilioApi, *, backoff: float = 0.2, max_retries: int = 2) -> TwilioRestClient:
    return TwilioRestClient(
        api.account_sid, api.auth_token, api.base_url, backoff=backoff, max_retries=max_retries
    )


def _official(api: FakeTwilioApi) -> Client:
    client = Client(api.account_sid, api.auth_token)
    client.api.base_url = api.base_url
    return client


def _wire(request: RecordedRequest) -> tuple[str, str, Counter[tuple[str, str]], str]:
    """What identifies a request on the wire, whichever library sent it."""
    return (
        request.method,
        request.path,
        Counter(request.form),
        request.headers["content-type"],
    )


async def test_hang_up_completes_a_live_call(twilio_api: FakeTwilioApi) -> None:
    call = twilio_api.add_live_call()
    async with _ours(twilio_api) as client:
        await client.hang_up(call.sid)
    assert call.status == "completed"
    assert twilio_api.requests[-1].form == [("Status", "completed")]


async def test_hang_up_of_an_ended_call_succeeds(twilio_api: FakeTwilioApi) -> None:
    call = twilio_api.add_live_call()
    call.status = "completed"
    async with _ours(twilio_api) as client:
        await client.hang_up(call.sid)
    assert twilio_api.requests[-1].authorized


async def test_hang_up_of_an_unknown_call_succeeds(twilio_api: FakeTwilioApi) -> None:
    async with _ours(twilio_api) as client:
        await client.hang_up("CA" + "0" * 32)
    assert len(twilio_api.requests) == 1


async def test_hang_up_sends_what_the_official_library_sends(twilio_api: FakeTwilioApi) -> None:
    ours_call, official_call = twilio_api.add_live_call(), twilio_api.add_live_call()
    async with _ours(twilio_api) as client:
        await client.hang_up(ours_call.sid)
    await asyncio.to_thread(
        _official(twilio_api).calls(official_call.sid).update, status="completed"
    )
    ours, official = twilio_api.requests
    assert _wire(ours)[2:] == _wire(official)[2:]
    assert ours.path.replace(ours_call.sid, official_call.sid) == official.path


async def test_redirect_sends_the_twiml(twilio_api: FakeTwilioApi) -> None:
    call = twilio_api.add_live_call()
    twiml = dial_twiml("+14155550199", caller_id="+18005550100")
    async with _ours(twilio_api) as client:
        await client.redirect(call.sid, twiml)
    assert call.redirects == [twiml]
    assert call.status == "in-progress"


async def test_redirect_sends_what_the_official_library_sends(twilio_api: FakeTwilioApi) -> None:
    call = twilio_api.add_live_call()
    twiml = dial_twiml("+14155550199", caller_id=None)
    async with _ours(twilio_api) as client:
        await client.redirect(call.sid, twiml)
    await asyncio.to_thread(_official(twilio_api).calls(call.sid).update, twiml=twiml)
    ours, official = twilio_api.requests
    assert _wire(ours) == _wire(official)


async def test_redirect_of_an_ended_call_raises(twilio_api: FakeTwilioApi) -> None:
    call = twilio_api.add_live_call()
    call.status = "completed"
    async with _ours(twilio_api) as client:
        with pytest.raises(TwilioApiError) as caught:
            await client.redirect(call.sid, dial_twiml("+14155550199", None))
    assert (caught.value.status, caught.value.code) == (404, 20404)


async def test_create_call_returns_the_queued_call(twilio_api: FakeTwilioApi) -> None:
    async with _ours(twilio_api) as client:
        info = await client.create_call(
            to="+14155550123",
            from_="+18005550100",
            url=CONNECT_URL,
            status_callback=CALLBACK,
            status_callback_events=EVENTS,
            machine_detection="Enable",
            timeout=25,
        )
    call = twilio_api.calls[info.sid]
    assert info == CallInfo(
        info.sid,
        "queued",
        "+14155550123",
        "+18005550100",
        "outbound-api",
        date_created=info.date_created,
    )
    assert call.status_callback_events == EVENTS
    assert (call.url, call.machine_detection, call.timeout) == (CONNECT_URL, "Enable", 25)


async def test_create_call_sends_what_the_official_library_sends(
    twilio_api: FakeTwilioApi,
) -> None:
    async with _ours(twilio_api) as client:
        await client.create_call(
            "+14155550123", "+18005550100", CONNECT_URL, CALLBACK, EVENTS, "Enable", 25
        )
    await asyncio.to_thread(
        _official(twilio_api).calls.create,
        to="+14155550123",
        from_="+18005550100",
        url=CONNECT_URL,
        status_callback=CALLBACK,
        status_callback_event=EVENTS,
        status_callback_method="POST",
        machine_detection="Enable",
        timeout=25,
    )
    ours, official = twilio_api.requests
    assert _wire(ours) == _wire(official)
    assert ours.values("StatusCallbackEvent") == official.values("StatusCallbackEvent")


async def test_wrong_auth_token_raises_authenticate_error(twilio_api: FakeTwilioApi) -> None:
    call = twilio_api.add_live_call()
    client = TwilioRestClient(twilio_api.account_sid, "wrong-token", twilio_api.base_url)
    async with client:
        with pytest.raises(TwilioApiError) as caught:
            await client.hang_up(call.sid)
    assert (caught.value.status, caught.value.code) == (401, 20003)
    assert call.status == "in-progress"


async def test_official_client_is_refused_with_the_same_error(twilio_api: FakeTwilioApi) -> None:
    client = Client(twilio_api.account_sid, "wrong-token")
    client.api.base_url = twilio_api.base_url
    with pytest.raises(TwilioRestException) as caught:
        await asyncio.to_thread(client.calls("CA" + "0" * 32).update, status="completed")
    assert (caught.value.status, caught.value.code) == (401, 20003)


async def test_hang_up_retries_a_server_error(twilio_api: FakeTwilioApi) -> None:
    call = twilio_api.add_live_call()
    twilio_api.fail_next(503, times=2)
    async with _ours(twilio_api, backoff=0.001) as client:
        await client.hang_up(call.sid)
    assert call.status == "completed"
    assert len(twilio_api.requests) == 3


async def test_hang_up_gives_up_after_its_retries(twilio_api: FakeTwilioApi) -> None:
    call = twilio_api.add_live_call()
    twilio_api.fail_next(503, times=3)
    async with _ours(twilio_api, backoff=0.001, max_retries=2) as client:
        with pytest.raises(TwilioApiError) as caught:
            await client.hang_up(call.sid)
    assert caught.value.status == 503


async def test_redirect_is_not_retried_after_a_server_error(twilio_api: FakeTwilioApi) -> None:
    call = twilio_api.add_live_call()
    twilio_api.fail_next(503)
    async with _ours(twilio_api, backoff=0.001) as client:
        with pytest.raises(TwilioApiError):
            await client.redirect(call.sid, dial_twiml("+14155550199", None))
    assert len(twilio_api.requests) == 1


async def test_create_call_is_not_retried_after_a_server_error(twilio_api: FakeTwilioApi) -> None:
    twilio_api.fail_next(500)
    async with _ours(twilio_api, backoff=0.001) as client:
        with pytest.raises(TwilioApiError):
            await client.create_call("+14155550123", "+18005550100", CONNECT_URL, CALLBACK, [])
    assert twilio_api.calls == {}
    assert len(twilio_api.requests) == 1


async def test_unreachable_api_raises_after_retrying() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = TwilioRestClient("AC" + "1" * 32, "token", f"http://127.0.0.1:{port}", backoff=0.001)
    async with client:
        with pytest.raises(TwilioApiError) as caught:
            await client.hang_up("CA" + "0" * 32)
    assert caught.value.status == 0


async def test_malformed_call_sid_is_refused_before_any_request() -> None:
    async with TwilioRestClient("AC" + "1" * 32, "token", "http://127.0.0.1:9") as client:
        with pytest.raises(ValueError, match="call SID"):
            await client.hang_up("CA123/../../Accounts")


async def test_retries_are_logged_without_the_auth_token(
    twilio_api: FakeTwilioApi, caplog: pytest.LogCaptureFixture
) -> None:
    call = twilio_api.add_live_call()
    twilio_api.fail_next(503)
    caplog.set_level(logging.DEBUG)
    async with _ours(twilio_api, backoff=0.001) as client:
        await client.hang_up(call.sid)
    assert "retry" in caplog.text
    assert twilio_api.auth_token not in caplog.text


def test_dial_twiml_renders_what_the_official_library_renders() -> None:
    official = VoiceResponse()
    official.dial(caller_id="+18005550100").number("+14155550199")
    assert dial_twiml("+14155550199", "+18005550100") == str(official)


def test_dial_twiml_without_caller_id_has_no_caller_id_attribute() -> None:
    assert "callerId" not in dial_twiml("+14155550199", None)


@pytest.mark.parametrize(("number", "caller_id"), [("555-0199", None), ("+14155550199", "bob")])
def test_dial_twiml_refuses_numbers_that_are_not_e164(number: str, caller_id: str | None) -> None:
    with pytest.raises(ValueError, match=r"E\.164"):
        dial_twiml(number, caller_id)
