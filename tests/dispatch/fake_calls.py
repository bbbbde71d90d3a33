"""A tiny in-process Twilio Calls API (httpx.MockTransport): records creates, answers each
destination as configured (a call, or an error), lists, fetches and hangs up calls."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import parse_qsl

import httpx

from voxline.telephony.twilio.rest import TwilioRestClient

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "fake-token"


@dataclass
class Call:
    sid: str
    to: str
    from_: str
    status: str = "queued"
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    duration: int | None = None


@dataclass
class FakeCalls:
    creates: list[list[tuple[str, str]]] = field(default_factory=list)
    create_times: list[float] = field(default_factory=list)
    """`time.monotonic()` of each create request."""
    calls: dict[str, Call] = field(default_factory=dict)
    hangups: list[str] = field(default_factory=list)
    errors: dict[str, list[tuple[int, int, str]]] = field(default_factory=dict)
    """Per `To`: errors to answer the next creates with (status, code, message)."""
    swallow_answers: bool = False
    """Create the call but answer 503 (as if the response was lost)."""

    def client(self) -> TwilioRestClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(self._handle))
        return TwilioRestClient(ACCOUNT_SID, AUTH_TOKEN, "https://api.test", http, backoff=0.0)

    def add_call(self, to: str, from_: str, status: str = "in-progress") -> Call:
        call = Call("CA" + secrets.token_hex(16), to, from_, status)
        self.calls[call.sid] = call
        return call

    def _handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path.endswith("/Calls.json"):
            return self._create(parse_qsl(request.content.decode()))
        if request.method == "GET" and path.endswith("/Calls.json"):
            query = dict(request.url.params)
            found = [
                self._resource(call)
                for call in self.calls.values()
                if call.to == query.get("To") and call.from_ == query.get("From")
            ]
            return httpx.Response(200, json={"calls": found, "next_page_uri": None})
        sid = path.rsplit("/", 1)[-1].removesuffix(".json")
        call = self.calls.get(sid)
        if call is None:
            return httpx.Response(404, json={"code": 20404, "message": "not found"})
        if request.method == "POST":
            self.hangups.append(sid)
            call.status = "completed"
        return httpx.Response(200, json=self._resource(call))

    def _create(self, form: list[tuple[str, str]]) -> httpx.Response:
        self.creates.append(form)
        self.create_times.append(time.monotonic())
        values = dict(form)
        queued = self.errors.get(values["To"])
        if queued:
            status, code, message = queued.pop(0)
            return httpx.Response(status, json={"code": code, "message": message})
        call = self.add_call(values["To"], values["From"], "queued")
        if self.swallow_answers:
            return httpx.Response(503, content=json.dumps({"code": 20503, "message": "lost"}))
        return httpx.Response(201, json=self._resource(call))

    def _resource(self, call: Call) -> dict[str, object]:
        return {
            "sid": call.sid,
            "status": call.status,
            "to": call.to,
            "from": call.from_,
            "direction": "outbound-api",
            "date_created": format_datetime(call.created),
            "duration": str(call.duration) if call.duration is not None else None,
        }
