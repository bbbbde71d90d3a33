"""The simulated Twilio (outbound side) against a tiny in-test server playing voxline's part.

The stub server checks every request's X-Twilio-Signature with the official `twilio`
RequestValidator, answers the TwiML fetch with `<Connect><Stream>` to its own WebSocket, and
speaks the Media Streams protocol's server side there: a greeting and a mark at start, a
reply after each thing the callee says.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import numpy as np
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from twilio.request_validator import RequestValidator
from twilio.rest import Client

import voxline
from voxline.audio.mulaw import decode_mulaw, encode_mulaw
from voxline.audio.pcm import Pcm16
from voxline.simulator.twilio_cloud import (
    CallbackChaos,
    Callee,
    Timing,
    TwilioCloud,
    build_parser,
)
from voxline.telephony.twilio.media import (
    MarkMessage,
    MediaMessage,
    StartMessage,
    StopMessage,
    mark_json,
    media_json,
    parse_inbound,
)
from voxline.telephony.twilio.rest import TwilioRestClient
from voxline.telephony.twilio.twiml import connect_stream_twiml

FAST = Timing(ring=0.02, no_answer=0.05, amd=0.02)
ALL_EVENTS = ("initiated", "ringing", "answered", "completed")
FROM = "+14155550100"


def _tone(seconds: float, hz: float = 440.0, level: int = 6000) -> Pcm16:
    t = np.arange(round(seconds * 8000)) / 8000
    return (np.sin(2 * np.pi * hz * t) * level).astype(np.int16)


def _loud(payload: bytes) -> bool:
    return bool(np.abs(decode_mulaw(payload).astype(np.int32)).max() > 500)


def _dominant_hz(pcm: Pcm16) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    return float(np.fft.rfftfreq(len(pcm), 1 / 8000)[int(np.argmax(spectrum))])


@dataclass
class StreamLog:
    start: StartMessage | None = None
    loud_frames: list[bytes] = field(default_factory=list)
    marks: list[str] = field(default_factory=list)
    stopped: bool = False


@dataclass
class Received:
    path: str
    params: dict[str, str]
    valid: bool


class VoxlineStub:
    """voxline's side of outbound calls, reduced to what Twilio sees of it."""

    def __init__(
        self,
        auth_token: str,
        *,
        close_after_greeting: bool = False,
        greet: bool = True,
        public_base_url: str | None = None,
    ) -> None:
        self.validator = RequestValidator(auth_token)
        self.close_after_greeting = close_after_greeting
        self.greet = greet
        self.public_base_url = public_base_url
        self.twiml: str | None = None
        self.received: list[Received] = []
        self.streams: list[StreamLog] = []
        self.stream_started = asyncio.Event()
        self.ringing = asyncio.Event()
        self._changed = asyncio.Event()
        self.base_url = ""
        self.app = Starlette(
            routes=[
                Route("/connect/{task}", self._connect, methods=["POST"]),
                Route("/status/{task}", self._status, methods=["POST", "GET"]),
                WebSocketRoute("/stream", self._stream),
            ]
        )

    def url(self, path: str) -> str:
        """Where Twilio is told to send requests: the public URL when there is one."""
        return (self.public_base_url or self.base_url) + path

    def of(self, prefix: str) -> list[Received]:
        return [r for r in self.received if r.path.startswith(prefix)]

    async def _record(self, request: Request) -> Received:
        body = (await request.body()).decode()
        params = dict(parse_qsl(body)) if request.method == "POST" else {}
        url = self.url(request.url.path) + (f"?{request.url.query}" if request.url.query else "")
        valid = self.validator.validate(url, params, request.headers.get("X-Twilio-Signature", ""))
        received = Received(request.url.path, params or dict(request.query_params), valid)
        self.received.append(received)
        self._changed.set()
        self._changed = asyncio.Event()
        return received

    async def changed(self) -> None:
        """Wait for the next request."""
        await self._changed.wait()

    async def _connect(self, request: Request) -> Response:
        received = await self._record(request)
        if not received.valid:
            return Response(status_code=403)
        stream_url = self.url("/stream").replace("http", "ws", 1)
        relay = {"relay": "relay-" + request.path_params["task"]}
        twiml = self.twiml or connect_stream_twiml(stream_url, relay)
        return Response(twiml, media_type="application/xml")

    async def _status(self, request: Request) -> Response:
        received = await self._record(request)
        if received.params.get("CallStatus") == "ringing":
            self.ringing.set()
        return Response(status_code=204 if received.valid else 403)

    async def _stream(self, ws: WebSocket) -> None:
        await ws.accept()
        log = StreamLog()
        self.streams.append(log)
        talking = False
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                message = parse_inbound(await ws.receive_text())
                if isinstance(message, StartMessage):
                    log.start = message
                    self.stream_started.set()
                    if self.greet:
                        await self._say(ws, message.stream_sid, "greeting")
                elif isinstance(message, MarkMessage):
                    log.marks.append(message.name)
                    if message.name == "greeting" and self.close_after_greeting:
                        await ws.close()
                        return
                elif isinstance(message, MediaMessage):
                    loud = _loud(message.payload)
                    if loud:
                        log.loud_frames.append(message.payload)
                    elif talking:
                        await self._say(ws, message.stream_sid, "reply")
                    talking = loud
                elif isinstance(message, StopMessage):
                    log.stopped = True
                    return

    async def _say(self, ws: WebSocket, stream_sid: str, mark: str) -> None:
        audio = encode_mulaw(_tone(0.2))
        for offset in range(0, len(audio), 160):
            await ws.send_text(media_json(stream_sid, audio[offset : offset + 160]))
        await ws.send_text(mark_json(stream_sid, mark))


@asynccontextmanager
async def _serve(app: Starlette) -> AsyncIterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
            raise RuntimeError("the stub server did not start")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def _world(
    *, close_after_greeting: bool = False, greet: bool = True, **options: Any
) -> AsyncIterator[tuple[TwilioCloud, VoxlineStub]]:
    options.setdefault("timing", FAST)
    options.setdefault("callee", Callee(turn_silence_ms=150, reply_timeout=2.0, max_seconds=10))
    async with TwilioCloud(**options) as cloud:
        stub = VoxlineStub(cloud.auth_token, close_after_greeting=close_after_greeting, greet=greet)
        async with _serve(stub.app) as base_url:
            stub.base_url = base_url
            yield cloud, stub


async def _create(
    cloud: TwilioCloud,
    stub: VoxlineStub,
    to: str,
    *,
    task: str = "t1",
    events: tuple[str, ...] = ALL_EVENTS,
    **extra: str,
) -> httpx.Response:
    form: dict[str, Any] = {
        "To": to,
        "From": FROM,
        "Url": stub.url(f"/connect/{task}"),
        "StatusCallback": stub.url(f"/status/{task}"),
        "StatusCallbackEvent": list(events),
        "StatusCallbackMethod": "POST",
        **extra,
    }
    async with httpx.AsyncClient(auth=(cloud.account_sid, cloud.auth_token)) as http:
        return await http.post(
            f"{cloud.base_url}/2010-04-01/Accounts/{cloud.account_sid}/Calls.json", data=form
        )


async def _placed(cloud: TwilioCloud, stub: VoxlineStub, to: str, **extra: Any) -> str:
    response = await _create(cloud, stub, to, **extra)
    assert response.status_code == 201, response.text
    sid: str = response.json()["sid"]
    await cloud.wait_ended(sid, timeout=10)
    return sid


def _statuses(cloud: TwilioCloud, sid: str) -> list[str]:
    return [record.params["CallStatus"] for record in cloud.status_callbacks(sid)]


# --- outcomes -------------------------------------------------------------------------------


async def test_answered_call_plays_the_whole_loop_with_signed_callbacks() -> None:
    callee = Callee(lines=[_tone(0.2, hz=300)], turn_silence_ms=150, reply_timeout=2.0)
    async with _world(callee=callee) as (cloud, stub):
        sid = await _placed(cloud, stub, "+15550000001")

    statuses = cloud.status_callbacks(sid)
    assert [r.params["CallStatus"] for r in statuses] == [
        "initiated",
        "ringing",
        "in-progress",
        "completed",
    ]
    assert [r.params["SequenceNumber"] for r in statuses] == ["0", "1", "2", "3"]
    assert all(r.valid for r in stub.received)
    assert {r.status_code for r in cloud.callbacks} == {200, 204}
    for record in statuses:
        assert record.params["Direction"] == "outbound-api"
        assert record.params["AccountSid"] == cloud.account_sid
        assert record.params["To"] == "+15550000001"
        assert record.params["From"] == FROM
        assert record.params["ApiVersion"] == "2010-04-01"
        assert parsedate_to_datetime(record.params["Timestamp"]).tzinfo is not None
    final = statuses[-1].params
    assert final["SipResponseCode"] == "200"
    assert int(final["CallDuration"]) >= 1
    assert "CallDuration" not in statuses[2].params

    (fetch,) = stub.of("/connect/")
    assert fetch.params["CallStatus"] == "in-progress"
    assert fetch.params["CallSid"] == sid
    assert fetch.params["Direction"] == "outbound-api"
    (stream,) = stub.streams
    assert stream.start is not None
    assert stream.start.call_sid == sid
    assert stream.start.custom_parameters == {"relay": "relay-t1"}
    assert stream.marks[:2] == ["greeting", "reply"]
    assert len(stream.loud_frames) >= 8  # the callee's 0.2 s line reached the server
    assert stream.stopped
    heard = cloud.calls[sid].streams[0]
    assert heard.first_response is not None
    assert cloud.calls[sid].status == "completed"


async def test_text_lines_are_spoken_by_the_piper_voice() -> None:
    callee = Callee(lines=["Yes, that works for me."], turn_silence_ms=150, reply_timeout=2.0)
    async with _world(callee=callee) as (cloud, stub):
        sid = await _placed(cloud, stub, "+15550000028")

    (utterance,) = cloud.calls[sid].streams[0].utterances
    assert 0.5 < utterance.duration < 4.0
    assert len(stub.streams[0].loud_frames) >= 10
    assert stub.streams[0].marks[:2] == ["greeting", "reply"]


async def test_only_the_requested_events_are_reported() -> None:
    async with _world() as (cloud, stub):
        sid = await _placed(cloud, stub, "+15550000002", events=())

    assert _statuses(cloud, sid) == ["completed"]  # Twilio's default


@pytest.mark.parametrize(
    ("outcome", "statuses", "sip"),
    [
        ("busy", ["initiated", "busy"], "486"),
        ("failed", ["initiated", "failed"], "503"),
        ("no-answer", ["initiated", "ringing", "no-answer"], "487"),
    ],
)
async def test_unanswered_outcomes_end_without_a_twiml_fetch(
    outcome: str, statuses: list[str], sip: str
) -> None:
    async with _world(outcomes={"+15550000003": outcome}) as (cloud, stub):
        sid = await _placed(cloud, stub, "+15550000003")

    assert _statuses(cloud, sid) == statuses
    final = cloud.status_callbacks(sid)[-1].params
    assert (final["SipResponseCode"], final["CallDuration"]) == (sip, "0")
    assert stub.of("/connect/") == []
    assert stub.streams == []


async def test_a_ring_longer_than_the_timeout_is_a_no_answer() -> None:
    async with _world(timing=Timing(ring=1.5)) as (cloud, stub):
        sid = await _placed(cloud, stub, "+15550000004", Timeout="1")

    assert _statuses(cloud, sid) == ["initiated", "ringing", "no-answer"]


async def test_outcome_lists_are_used_one_per_call() -> None:
    async with _world(outcomes={"+15550000005": ["busy", "answer"]}) as (cloud, stub):
        first = await _placed(cloud, stub, "+15550000005")
        second = await _placed(cloud, stub, "+15550000005")
        third = await _placed(cloud, stub, "+15550000005")

    assert _statuses(cloud, first)[-1] == "busy"
    assert _statuses(cloud, second)[-1] == "completed"
    assert _statuses(cloud, third)[-1] == "completed"


# --- machine detection ----------------------------------------------------------------------


async def test_async_detect_message_end_posts_the_verdict_after_the_beep() -> None:
    callee = Callee(greeting=_tone(0.5, hz=200), record_seconds=0.2)
    async with _world(outcomes={"+15550000006": "voicemail"}, callee=callee) as (cloud, stub):
        sid = await _placed(
            cloud,
            stub,
            "+15550000006",
            MachineDetection="DetectMessageEnd",
            AsyncAmd="true",
            AsyncAmdStatusCallback=stub.url("/status/t1"),
        )

    (verdict,) = [r for r in cloud.callbacks if r.kind == "amd"]
    assert verdict.params["AnsweredBy"] == "machine_end_beep"
    assert verdict.params["CallSid"] == sid
    assert verdict.params["AccountSid"] == cloud.account_sid
    assert int(verdict.params["MachineDetectionDuration"]) >= 900  # greeting 0.5 s + beep 0.4 s
    assert verdict.status_code == 204
    (fetch,) = stub.of("/connect/")
    assert "AnsweredBy" not in fetch.params  # async: the call connected at once
    (stream,) = stub.streams
    heard = decode_mulaw(b"".join(stream.loud_frames))
    assert round(_dominant_hz(heard[:4000])) == 200  # the greeting
    assert round(_dominant_hz(heard[-3200:])) == 1000  # then the beep
    assert _statuses(cloud, sid)[-1] == "completed"


@pytest.mark.parametrize(
    ("outcome", "verdict"), [("voicemail", "machine_start"), ("answer", "human")]
)
async def test_async_enable_posts_an_early_verdict(outcome: str, verdict: str) -> None:
    callee = Callee(greeting=_tone(0.2, hz=200), record_seconds=0.1, turn_silence_ms=150)
    async with _world(outcomes={"+15550000007": outcome}, callee=callee) as (cloud, stub):
        await _placed(
            cloud,
            stub,
            "+15550000007",
            MachineDetection="Enable",
            AsyncAmd="true",
            AsyncAmdStatusCallback=stub.url("/status/amd"),
        )

    (amd,) = stub.of("/status/amd")
    assert amd.valid
    assert amd.params["AnsweredBy"] == verdict


@pytest.mark.parametrize(
    ("outcome", "detection", "verdict"),
    [
        ("answer", "DetectMessageEnd", "human"),
        ("voicemail", "DetectMessageEnd", "machine_end_beep"),
        ("voicemail", "Enable", "machine_start"),
    ],
)
async def test_without_async_amd_the_verdict_comes_with_the_twiml_fetch(
    outcome: str, detection: str, verdict: str
) -> None:
    callee = Callee(greeting=_tone(0.2, hz=200), record_seconds=0.1, turn_silence_ms=150)
    async with _world(outcomes={"+15550000008": outcome}, callee=callee) as (cloud, stub):
        sid = await _placed(cloud, stub, "+15550000008", MachineDetection=detection)

    (fetch,) = stub.of("/connect/")
    assert fetch.params["AnsweredBy"] == verdict
    assert [r for r in cloud.callbacks if r.kind == "amd"] == []
    assert cloud.status_callbacks(sid)[-1].params["AnsweredBy"] == verdict


# --- unruly callbacks -----------------------------------------------------------------------


async def test_callbacks_can_be_duplicated() -> None:
    async with _world(chaos=CallbackChaos(duplicate=1.0)) as (cloud, stub):
        sid = await _placed(cloud, stub, "+15550000009")

    numbers = [r.params["SequenceNumber"] for r in cloud.status_callbacks(sid)]
    assert numbers == ["0", "0", "1", "1", "2", "2", "3", "3"]
    assert all(r.valid for r in stub.of("/status/"))


async def test_callbacks_can_be_reordered_reproducibly() -> None:
    orders = []
    for _ in range(2):
        async with _world(chaos=CallbackChaos(reorder=0.5, seed=7)) as (cloud, stub):
            sid = await _placed(cloud, stub, "+15550000010")
        orders.append([r.params["SequenceNumber"] for r in cloud.status_callbacks(sid)])

    assert orders[0] == orders[1]
    assert orders[0] != sorted(orders[0])
    assert sorted(orders[0]) == ["0", "1", "2", "3"]


async def test_status_callbacks_by_get_carry_the_params_in_the_signed_url() -> None:
    async with _world() as (cloud, stub):
        sid = await _placed(cloud, stub, "+15550000011", StatusCallbackMethod="GET")

    gets = stub.of("/status/")
    assert [r.params["CallStatus"] for r in gets] == _statuses(cloud, sid)
    assert all(r.valid for r in gets)


# --- ending a call --------------------------------------------------------------------------


async def test_rest_hang_up_ends_the_stream_and_reports_completed() -> None:
    # A silent agent: the callee would wait 30 s for it before hanging up.
    async with _world(greet=False, callee=Callee(reply_timeout=30, max_seconds=30)) as (
        cloud,
        stub,
    ):
        response = await _create(cloud, stub, "+15550000012")
        sid = response.json()["sid"]
        await asyncio.wait_for(stub.stream_started.wait(), 5)
        url = f"{cloud.base_url}/2010-04-01/Accounts/{cloud.account_sid}/Calls/{sid}.json"
        async with httpx.AsyncClient(auth=(cloud.account_sid, cloud.auth_token)) as http:
            live = (await http.get(url)).json()
        async with TwilioRestClient(cloud.account_sid, cloud.auth_token, cloud.base_url) as rest:
            await rest.hang_up(sid)
            call = await cloud.wait_ended(sid, timeout=5)
            await rest.hang_up(sid)  # a 404 now, which the client takes as done

    assert (live["status"], live["end_time"], live["duration"]) == ("in-progress", None, None)
    assert live["start_time"] is not None
    assert stub.streams[0].stopped
    assert not call.streams[0].closed_by_server
    final = cloud.status_callbacks(sid)[-1].params
    assert (final["CallStatus"], final["SipResponseCode"]) == ("completed", "200")
    assert call.resource()["status"] == "completed"
    assert call.resource()["duration"] == final["CallDuration"]


async def test_hanging_up_while_ringing_cancels_the_call() -> None:
    async with _world(timing=Timing(ring=5)) as (cloud, stub):
        response = await _create(cloud, stub, "+15550000013")
        sid = response.json()["sid"]
        await asyncio.wait_for(stub.ringing.wait(), 5)
        async with TwilioRestClient(cloud.account_sid, cloud.auth_token, cloud.base_url) as rest:
            await rest.hang_up(sid)
        await cloud.wait_ended(sid, timeout=5)

    assert _statuses(cloud, sid) == ["initiated", "ringing", "canceled"]
    assert cloud.status_callbacks(sid)[-1].params["SipResponseCode"] == "487"


async def test_the_server_closing_the_stream_ends_the_call() -> None:
    async with _world(close_after_greeting=True) as (cloud, stub):
        sid = await _placed(cloud, stub, "+15550000014")

    assert cloud.calls[sid].streams[0].closed_by_server
    assert _statuses(cloud, sid)[-1] == "completed"


async def test_a_redirect_stops_the_stream_and_ends_the_call_after_the_dial() -> None:
    async with _world(greet=False, callee=Callee(reply_timeout=30, max_seconds=30)) as (
        cloud,
        stub,
    ):
        sid = (await _create(cloud, stub, "+15550000015")).json()["sid"]
        await asyncio.wait_for(stub.stream_started.wait(), 5)
        async with TwilioRestClient(cloud.account_sid, cloud.auth_token, cloud.base_url) as rest:
            await rest.redirect(sid, "<Response><Dial>+15550009999</Dial></Response>")
        call = await cloud.wait_ended(sid, timeout=5)

    assert stub.streams[0].stopped
    assert call.redirects == ["<Response><Dial>+15550009999</Dial></Response>"]
    assert _statuses(cloud, sid)[-1] == "completed"


async def test_a_redirect_to_another_stream_opens_it() -> None:
    async with _world(greet=False, callee=Callee(reply_timeout=30, max_seconds=30)) as (
        cloud,
        stub,
    ):
        sid = (await _create(cloud, stub, "+15550000027")).json()["sid"]
        await asyncio.wait_for(stub.stream_started.wait(), 5)
        stub.stream_started.clear()
        twiml = connect_stream_twiml(stub.url("/stream").replace("http", "ws", 1), {"relay": "r2"})
        async with TwilioRestClient(cloud.account_sid, cloud.auth_token, cloud.base_url) as rest:
            await rest.redirect(sid, twiml)
            await asyncio.wait_for(stub.stream_started.wait(), 5)
            await rest.hang_up(sid)
        await cloud.wait_ended(sid, timeout=5)

    first, second = stub.streams
    assert first.stopped and second.stopped
    assert second.start is not None and second.start.custom_parameters == {"relay": "r2"}
    assert _statuses(cloud, sid)[-1] == "completed"


async def test_stopping_the_simulator_cuts_live_calls_off() -> None:
    async with _world(greet=False, callee=Callee(reply_timeout=30, max_seconds=30)) as (
        cloud,
        stub,
    ):
        await _create(cloud, stub, "+15550000032")
        await asyncio.wait_for(stub.stream_started.wait(), 5)
        async with asyncio.timeout(5):
            await cloud.stop()
        await asyncio.sleep(0.1)  # the stub reads the stream's last message

    assert stub.streams[0].stopped


async def test_a_refused_twiml_fetch_ends_the_call() -> None:
    async with _world() as (cloud, stub):
        stub.validator = RequestValidator("another token")
        sid = await _placed(cloud, stub, "+15550000016")

    assert cloud.calls[sid].errors and "403" in cloud.calls[sid].errors[0]
    assert stub.streams == []
    assert _statuses(cloud, sid)[-1] == "completed"


async def test_twiml_without_a_stream_ends_the_call_once_run() -> None:
    hang_up = "<Response><Say>Sorry, the task was canceled.</Say><Hangup/></Response>"
    async with _world() as (cloud, stub):
        stub.twiml = hang_up
        sid = await _placed(cloud, stub, "+15550000026")

    call = cloud.calls[sid]
    assert (call.twiml, call.errors, call.streams) == ([hang_up], [], [])
    assert _statuses(cloud, sid)[-1] == "completed"


# --- the REST API ---------------------------------------------------------------------------


def _twilio_error(response: httpx.Response, status: int, code: int) -> None:
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"code", "message", "more_info", "status"}
    assert (body["code"], body["status"]) == (code, status)
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"


async def test_unknown_calls_answer_404_with_twilio_s_body() -> None:
    async with TwilioCloud() as cloud:
        url = f"{cloud.base_url}/2010-04-01/Accounts/{cloud.account_sid}/Calls/CA{'0' * 32}.json"
        async with httpx.AsyncClient(auth=(cloud.account_sid, cloud.auth_token)) as http:
            _twilio_error(await http.get(url), 404, 20404)
            _twilio_error(await http.post(url, data={"Status": "completed"}), 404, 20404)


async def test_wrong_credentials_are_refused() -> None:
    async with TwilioCloud() as cloud:
        url = f"{cloud.base_url}/2010-04-01/Accounts/{cloud.account_sid}/Calls.json"
        async with httpx.AsyncClient(auth=(cloud.account_sid, "wrong")) as http:
            _twilio_error(await http.get(url), 401, 20003)


@pytest.mark.parametrize(
    ("to", "rule", "code"),
    [
        ("+15550000017", "invalid", 21211),
        ("+15550000018", "unreachable", 21214),
        ("5550000019", "answer", 21211),
    ],
)
async def test_refused_destinations_carry_twilio_s_codes(to: str, rule: str, code: int) -> None:
    async with _world(outcomes={to: rule}) as (cloud, stub):
        response = await _create(cloud, stub, to)

    _twilio_error(response, 400, code)
    (record,) = cloud.creates
    assert (record.accepted, record.error_code) == (False, code)
    assert cloud.calls == {}


async def test_calls_from_a_number_the_account_does_not_own_are_refused() -> None:
    async with _world(owned_numbers=["+14155550199"]) as (cloud, stub):
        response = await _create(cloud, stub, "+15550000029")

    _twilio_error(response, 400, 21210)
    assert FROM in response.json()["message"]


async def test_injected_429_then_the_retry_is_accepted() -> None:
    async with _world() as (cloud, stub):
        cloud.fail_next(429)
        _twilio_error(await _create(cloud, stub, "+15550000020"), 429, 20429)
        retried = await _create(cloud, stub, "+15550000020")
        assert retried.status_code == 201
        await cloud.wait_all_ended(timeout=10)

    assert [(r.status_code, r.error_code) for r in cloud.creates] == [(429, 20429), (201, None)]
    assert len(cloud.calls) == 1


async def test_injected_5xx_hits_only_the_endpoint_asked_for() -> None:
    async with _world() as (cloud, stub):
        cloud.fail_next(503, endpoint="update")
        sid = await _placed(cloud, stub, "+15550000021")
        url = f"{cloud.base_url}/2010-04-01/Accounts/{cloud.account_sid}/Calls/{sid}.json"
        async with httpx.AsyncClient(auth=(cloud.account_sid, cloud.auth_token)) as http:
            assert (await http.get(url)).status_code == 200
            _twilio_error(await http.post(url, data={"Status": "completed"}), 503, 20503)


async def test_voxline_s_rest_client_creates_calls_here() -> None:
    async with _world() as (cloud, stub):
        async with TwilioRestClient(cloud.account_sid, cloud.auth_token, cloud.base_url) as rest:
            info = await rest.create_call(
                to="+15550000022",
                from_=FROM,
                url=stub.url("/connect/t9"),
                status_callback=stub.url("/status/t9"),
                status_callback_events=ALL_EVENTS,
                machine_detection="Enable",
                timeout=20,
            )
        await cloud.wait_ended(info.sid, timeout=10)

    assert info.status == "queued"
    (record,) = cloud.creates
    assert record.values("StatusCallbackEvent") == list(ALL_EVENTS)
    assert _statuses(cloud, info.sid) == ["initiated", "ringing", "in-progress", "completed"]


async def test_the_official_client_lists_with_filters_across_pages() -> None:
    async with _world(default_outcome="busy", outcomes={"+15550000024": "failed"}) as (
        cloud,
        stub,
    ):
        sids = [await _placed(cloud, stub, "+15550000023", task=f"t{i}") for i in range(5)]
        await _placed(cloud, stub, "+15550000024")
        client = Client(cloud.account_sid, cloud.auth_token)
        client.api.base_url = cloud.base_url

        def listing() -> tuple[list[str], list[str], list[str]]:
            day = cloud.calls[sids[0]].date_created.date()
            paged = client.calls.list(to="+15550000023", from_=FROM, page_size=2)
            since = client.calls.list(to="+15550000023", start_time_after=day)
            failed = client.calls.list(status="failed")
            return [c.sid for c in paged], [c.sid for c in since], [c.to for c in failed]

        paged, since, failed = await asyncio.to_thread(listing)

    assert paged == sids[::-1]  # newest first, over three pages
    assert sorted(since) == sorted(sids)
    assert failed == ["+15550000024"]


async def test_list_pages_link_with_next_page_uri() -> None:
    async with _world(default_outcome="busy") as (cloud, stub):
        for i in range(3):
            await _placed(cloud, stub, "+15550000025", task=f"t{i}")
        async with httpx.AsyncClient(
            base_url=cloud.base_url, auth=(cloud.account_sid, cloud.auth_token)
        ) as http:
            uri: str | None = (
                f"/2010-04-01/Accounts/{cloud.account_sid}/Calls.json"
                "?To=%2B15550000025&StartTime>=2000-01-01&PageSize=2"
            )
            pages = []
            while uri:
                body = (await http.get(uri)).json()
                pages.append([call["sid"] for call in body["calls"]])
                uri = body["next_page_uri"]
            future = await http.get(
                f"/2010-04-01/Accounts/{cloud.account_sid}/Calls.json?StartTime>=2999-01-01"
            )

    assert [len(page) for page in pages] == [2, 1]
    assert future.json()["calls"] == []


# --- pace and records -----------------------------------------------------------------------


async def test_cps_paces_dialing_and_live_calls_are_counted() -> None:
    async with _world(cps=10) as (cloud, stub):
        responses = await asyncio.gather(
            *(_create(cloud, stub, f"+1555000010{i}", task=f"t{i}") for i in range(4))
        )
        await cloud.wait_all_ended(timeout=15)

    assert [r.status_code for r in responses] == [201] * 4
    dialed = sorted(call.start_time for call in cloud.calls.values() if call.start_time)
    assert (dialed[-1] - dialed[0]).total_seconds() >= 0.28  # 4 calls at 10 per second
    assert cloud.max_creates_per_second() == 4  # creates are queued, never refused
    assert cloud.max_live == 4
    queued = sorted(int(call.resource()["queue_time"]) for call in cloud.calls.values())
    assert queued[0] == 0 and queued[-1] >= 290
    assert cloud.live_history[-1][1] == 0


def test_command_line_outcomes_parse(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["--outcome", "+15550001111=busy,answer"])
    assert args.outcome == [("+15550001111", ["busy", "answer"])]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--outcome", "+15550001111=maybe"])
    assert "unknown outcome" in capsys.readouterr().err


async def test_the_command_line_simulator_serves_a_server_behind_a_public_url() -> None:
    token = "cli-token"
    account = "AC" + "1" * 32
    stub = VoxlineStub(token, public_base_url="https://voice.example.com")
    async with _serve(stub.app) as local_url:
        stub.base_url = local_url
        env = {**os.environ, "PYTHONPATH": str(Path(voxline.__file__).parents[1])}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "voxline.simulator.twilio_cloud",
            *("--port", "0", "--server", local_url, "--auth-token", token),
            *("--account-sid", account, "--ring-seconds", "0.05"),
            *("--outcome", "+15550000031=busy"),
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        assert process.stdout is not None
        try:
            banner = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
            base_url = re.search(r"at (http://127\.0\.0\.1:\d+)", banner)
            assert base_url is not None, banner
            async with TwilioRestClient(account, token, base_url[1]) as rest:
                for to in ("+15550000030", "+15550000031"):
                    await rest.create_call(
                        to=to,
                        from_=FROM,
                        url=stub.url("/connect/cli"),
                        status_callback=stub.url("/status/cli"),
                        status_callback_events=ALL_EVENTS,
                    )
            async with asyncio.timeout(15):
                while (
                    len(
                        [
                            r
                            for r in stub.of("/status/")
                            if r.params["CallStatus"] in ("completed", "busy")
                        ]
                    )
                    < 2
                ):
                    await stub.changed()
        finally:
            process.send_signal(signal.SIGINT)
            returncode = await asyncio.wait_for(process.wait(), 10)

    assert returncode == 0
    assert stub.received and all(r.valid for r in stub.received)  # signed for the public URL
    assert stub.streams[0].stopped  # the stream went to the local server too
    finals = {r.params["To"]: r.params["CallStatus"] for r in stub.of("/status/")}
    assert finals == {"+15550000030": "completed", "+15550000031": "busy"}
