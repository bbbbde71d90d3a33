"""A fake Twilio REST API for tests: Calls create, fetch and update, with Basic auth.

Runs with uvicorn on 127.0.0.1 (a random port) in a thread of its own, so both async clients
and the official, blocking `twilio.rest.Client` can talk to it. Every request is recorded for
assertions. Unknown or ended calls answer 404 with code 20404, as Twilio does.

    with running_fake_twilio_api() as api:
        client = TwilioRestClient(api.account_sid, api.auth_token, api.base_url)
"""

from __future__ import annotations

import base64
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

API_VERSION = "2010-04-01"
TERMINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    form: list[tuple[str, str]]
    headers: dict[str, str]
    authorized: bool

    def values(self, key: str) -> list[str]:
        return [value for name, value in self.form if name == key]


@dataclass
class FakeCall:
    sid: str
    to: str
    from_: str
    status: str
    direction: str
    url: str | None = None
    status_callback: str | None = None
    status_callback_events: list[str] = field(default_factory=list)
    machine_detection: str | None = None
    timeout: int | None = None
    redirects: list[str] = field(default_factory=list)
    created: datetime = field(default_factory=lambda: datetime.now(UTC))


class FakeTwilioApi:
    """State and routes of the fake. `base_url` is set once it runs."""

    def __init__(self, account_sid: str | None = None, auth_token: str | None = None) -> None:
        self.account_sid = account_sid or "AC" + secrets.token_hex(16)
        self.auth_token = auth_token or secrets.token_hex(16)
        self.base_url = ""
        self.requests: list[RecordedRequest] = []
        self.calls: dict[str, FakeCall] = {}
        self._failures: list[int] = []
        prefix = f"/{API_VERSION}/Accounts/{{account}}/Calls"
        self.app = Starlette(
            routes=[
                Route(prefix + ".json", self._create, methods=["POST"]),
                Route(prefix + "/{sid}.json", self._update, methods=["POST"]),
                Route(prefix + "/{sid}.json", self._fetch, methods=["GET"]),
            ]
        )

    def add_live_call(self, to: str = "+18005550100", from_: str = "+14155550123") -> FakeCall:
        """A call in progress, as an inbound call is while its media stream runs."""
        call = FakeCall(
            sid="CA" + secrets.token_hex(16),
            to=to,
            from_=from_,
            status="in-progress",
            direction="inbound",
        )
        self.calls[call.sid] = call
        return call

    def fail_next(self, status: int, times: int = 1) -> None:
        """Answer the next `times` authorized requests with `status` (e.g. 503)."""
        self._failures.extend([status] * times)

    async def _create(self, request: Request) -> JSONResponse:
        denied = await self._admit(request)
        if denied is not None:
            return denied
        form = self.requests[-1]
        for key, code in (("To", 21201), ("From", 21213), ("Url", 21205)):
            if not form.values(key):
                return _error(400, code, f"No '{key}' parameter is specified")
        timeout = form.values("Timeout")
        call = FakeCall(
            sid="CA" + secrets.token_hex(16),
            to=form.values("To")[0],
            from_=form.values("From")[0],
            status="queued",
            direction="outbound-api",
            url=form.values("Url")[0],
            status_callback=next(iter(form.values("StatusCallback")), None),
            status_callback_events=form.values("StatusCallbackEvent"),
            machine_detection=next(iter(form.values("MachineDetection")), None),
            timeout=int(timeout[0]) if timeout else None,
        )
        self.calls[call.sid] = call
        return JSONResponse(self._resource(call), status_code=201)

    async def _update(self, request: Request) -> JSONResponse:
        denied = await self._admit(request)
        if denied is not None:
            return denied
        call = self.calls.get(request.path_params["sid"])
        if call is None or call.status in TERMINAL_STATUSES:
            return _not_found(request.url.path)
        form = self.requests[-1]
        status = form.values("Status")
        twiml = form.values("Twiml")
        if status:
            if status[0] not in ("completed", "canceled"):
                return _error(400, 21218, f"Invalid Status {status[0]!r}")
            call.status = status[0]
        elif twiml:
            call.redirects.append(twiml[0])
        else:
            return _error(400, 21205, "Url, Twiml or Status is required")
        return JSONResponse(self._resource(call))

    async def _fetch(self, request: Request) -> JSONResponse:
        denied = await self._admit(request)
        if denied is not None:
            return denied
        call = self.calls.get(request.path_params["sid"])
        if call is None:
            return _not_found(request.url.path)
        return JSONResponse(self._resource(call))

    async def _admit(self, request: Request) -> JSONResponse | None:
        """Record the request; refuse it when Basic auth or the account is wrong."""
        # Parsed by hand: starlette's form parser needs python-multipart.
        form = parse_qsl((await request.body()).decode(), keep_blank_values=True)
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        authorized = secrets.compare_digest(
            request.headers.get("authorization", ""), f"Basic {expected}"
        )
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.url.path,
                form=form,
                headers=dict(request.headers),
                authorized=authorized,
            )
        )
        if not authorized:
            return _error(401, 20003, "Authenticate")
        if request.path_params["account"] != self.account_sid:
            return _not_found(request.url.path)
        if self._failures:
            return _error(self._failures.pop(0), 20500, "Internal Server Error")
        return None

    def _resource(self, call: FakeCall) -> dict[str, Any]:
        stamp = format_datetime(call.created)
        return {
            "sid": call.sid,
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "to": call.to,
            "to_formatted": call.to,
            "from": call.from_,
            "from_formatted": call.from_,
            "status": call.status,
            "direction": call.direction,
            "date_created": stamp,
            "date_updated": stamp,
            "start_time": None,
            "end_time": None,
            "duration": None,
            "price": None,
            "price_unit": "USD",
            "answered_by": None,
            "parent_call_sid": None,
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{call.sid}.json",
        }


@contextmanager
def running_fake_twilio_api(
    account_sid: str | None = None, auth_token: str | None = None
) -> Iterator[FakeTwilioApi]:
    """Serve a `FakeTwilioApi` on 127.0.0.1:<random port> for the duration of the block."""
    api = FakeTwilioApi(account_sid, auth_token)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(api.app, log_level="warning", lifespan="off", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started or not thread.is_alive():
                break
            time.sleep(0.01)
        if not server.started:
            raise RuntimeError("the fake Twilio API did not start")
        api.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        yield api
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


def _error(status: int, code: int, message: str) -> JSONResponse:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return JSONResponse(body, status_code=status)


def _not_found(path: str) -> JSONResponse:
    return _error(404, 20404, f"The requested resource {path} was not found")
