"""The simulated Twilio Calls REST API: create, fetch, update (hang up, redirect) and list.

Basic auth with the account SID and auth token; errors have Twilio's body
`{"code", "message", "more_info", "status"}`; unknown calls answer 404 with code 20404.
Every create request is recorded with its arrival time (`CreateRecord`), refused ones too.
Failures can be injected (`fail_next`): 429 with code 20429, or any 5xx.

Listing follows Twilio's filters `To`, `From`, `Status`, `StartTime` and `StartTime>=` /
`StartTime<=` (a date `YYYY-MM-DD` compares by UTC day, a datetime by the instant), newest
first, paged with `PageSize` and `next_page_uri`. A call not dialed yet (queued behind the
CPS pace) has no start time and matches by its creation time.
"""

from __future__ import annotations

import base64
import secrets
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal, Protocol
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from voxline.simulator.twilio_calls import API_VERSION, CallStatus, CreateRefused, OutboundCall

Endpoint = Literal["create", "fetch", "update", "list"]
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

_FAILURE_CODES = {429: (20429, "Too Many Requests"), 503: (20503, "Service Unavailable")}


class CallsBackend(Protocol):
    """What the API needs from the simulator that holds the calls."""

    def create_call(self, form: list[tuple[str, str]]) -> OutboundCall:
        """Create and start playing a call; `CreateRefused` when Twilio would refuse it."""
        ...

    def find_call(self, sid: str) -> OutboundCall | None: ...

    def all_calls(self) -> Iterable[OutboundCall]: ...


@dataclass(frozen=True, slots=True)
class CreateRecord:
    """One create request: when it arrived (`received_at`, seconds since the simulator
    started; `received_wall`, UTC), its form, and the answer (`call_sid` when accepted,
    `error_code` when refused)."""

    received_at: float
    received_wall: datetime
    form: list[tuple[str, str]]
    status_code: int
    call_sid: str | None
    error_code: int | None

    def values(self, key: str) -> list[str]:
        return [value for name, value in self.form if name == key]

    @property
    def accepted(self) -> bool:
        return self.call_sid is not None


@dataclass(frozen=True, slots=True)
class _Failure:
    status: int
    code: int
    message: str
    endpoint: Endpoint | None


class CallsApi:
    """The Starlette app of the Calls API for one account."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        backend: CallsBackend,
        clock: Callable[[], float],
    ) -> None:
        self.account_sid = account_sid
        self.creates: list[CreateRecord] = []
        self._backend = backend
        self._clock = clock
        expected = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self._authorization = f"Basic {expected}"
        self._failures: deque[_Failure] = deque()
        prefix = f"/{API_VERSION}/Accounts/{{account}}/Calls"
        self.app = Starlette(
            routes=[
                Route(prefix + ".json", self._create, methods=["POST"]),
                Route(prefix + ".json", self._list, methods=["GET"]),
                Route(prefix + "/{sid}.json", self._update, methods=["POST"]),
                Route(prefix + "/{sid}.json", self._fetch, methods=["GET"]),
            ]
        )

    def fail_next(
        self,
        status: int,
        times: int = 1,
        *,
        code: int | None = None,
        endpoint: Endpoint | None = "create",
    ) -> None:
        """Answer the next `times` authorized requests to `endpoint` (None: any) with
        `status`: 429 carries code 20429 unless `code` says otherwise."""
        if status < 400:
            raise ValueError(f"an injected failure needs an error status, not {status}")
        default_code, message = _FAILURE_CODES.get(status, (20500, "Internal Server Error"))
        for _ in range(times):
            self._failures.append(_Failure(status, code or default_code, message, endpoint))

    async def _create(self, request: Request) -> JSONResponse:
        received_at, received_wall = self._clock(), datetime.now(UTC)
        form = await _form(request)
        denied = self._admit(request, "create")
        if denied is None:
            try:
                call = self._backend.create_call(form)
            except CreateRefused as exc:
                denied = _error(exc.status, exc.code, exc.message)
            else:
                self.creates.append(
                    CreateRecord(received_at, received_wall, form, 201, call.sid, None)
                )
                return JSONResponse(call.resource(), status_code=201)
        self.creates.append(
            CreateRecord(received_at, received_wall, form, denied.status_code, None, denied.code)
        )
        return denied

    async def _fetch(self, request: Request) -> JSONResponse:
        denied = self._admit(request, "fetch")
        if denied is not None:
            return denied
        call = self._backend.find_call(request.path_params["sid"])
        if call is None:
            return _not_found(request.url.path)
        return JSONResponse(call.resource())

    async def _update(self, request: Request) -> JSONResponse:
        form = dict(await _form(request))
        denied = self._admit(request, "update")
        if denied is not None:
            return denied
        call = self._backend.find_call(request.path_params["sid"])
        if call is None or call.status.terminal:
            return _not_found(request.url.path)
        status, twiml = form.get("Status"), form.get("Twiml")
        if status is not None:
            if status not in ("completed", "canceled"):
                return _error(400, 21218, f"Status must be completed or canceled, not {status!r}")
            # `canceled` leaves a call already answered alone, as Twilio does.
            if status == "completed" or call.status is not CallStatus.IN_PROGRESS:
                call.hang_up_requested.set()
        elif twiml is not None:
            if call.status is not CallStatus.IN_PROGRESS:
                return _error(400, 21220, "Call is not in-progress. Cannot redirect.")
            call.redirects.append(twiml)
            call.redirected.set()
        elif "Url" in form:
            return _error(400, 21205, "this simulator redirects calls with Twiml only, not Url")
        else:
            return _error(400, 21205, "Status or Twiml is required")
        return JSONResponse(call.resource())

    async def _list(self, request: Request) -> JSONResponse:
        denied = self._admit(request, "list")
        if denied is not None:
            return denied
        query = dict(parse_qsl(request.url.query, keep_blank_values=True))
        try:
            matches = _filter(self._backend.all_calls(), query)
            size = int(query.get("PageSize", DEFAULT_PAGE_SIZE))
            page = int(query.get("Page", 0))
        except ValueError as exc:
            return _error(400, 20001, f"Invalid filter: {exc}")
        size = min(max(size, 1), MAX_PAGE_SIZE)
        matches.sort(key=lambda call: (call.date_created, call.sid), reverse=True)
        start = page * size
        token = query.get("PageToken", "")
        sids = [call.sid for call in matches]
        if token.startswith("PA") and token[2:] in sids:
            start = sids.index(token[2:]) + 1
        calls = matches[start : start + size]
        filters = {key: value for key, value in query.items() if key not in _PAGING_KEYS}

        def uri(page_number: int, after: str | None = None) -> str:
            params = {**filters, "PageSize": str(size), "Page": str(page_number)}
            if after is not None:
                params["PageToken"] = "PA" + after
            return f"{request.url.path}?{urlencode(params)}"

        more = start + size < len(matches)
        body = {
            "calls": [call.resource() for call in calls],
            "start": start,
            "end": start + max(len(calls) - 1, 0),
            "page": page,
            "page_size": size,
            "uri": uri(page, token[2:] if token.startswith("PA") else None),
            "first_page_uri": uri(0),
            "next_page_uri": uri(page + 1, calls[-1].sid) if more and calls else None,
            "previous_page_uri": uri(page - 1) if page > 0 else None,
        }
        return JSONResponse(body)

    def _admit(self, request: Request, endpoint: Endpoint) -> _TwilioError | None:
        """Refuse a request with wrong credentials or account, or an injected failure."""
        authorization = request.headers.get("authorization", "")
        if not secrets.compare_digest(authorization.encode(), self._authorization.encode()):
            response = _error(401, 20003, "Authenticate")
            response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
            return response
        if request.path_params["account"] != self.account_sid:
            return _not_found(request.url.path)
        failure = next(
            (f for f in self._failures if f.endpoint is None or f.endpoint == endpoint), None
        )
        if failure is not None:
            self._failures.remove(failure)
            return _error(failure.status, failure.code, failure.message)
        return None


_PAGING_KEYS = frozenset({"Page", "PageSize", "PageToken"})


def _filter(calls: Iterable[OutboundCall], query: dict[str, str]) -> list[OutboundCall]:
    bounds: list[tuple[str, datetime | date]] = []
    for key, value in query.items():
        if key.startswith("StartTime"):
            op = key.removeprefix("StartTime").rstrip("=") or "="
            if op not in ("=", ">", "<"):
                raise ValueError(f"unknown filter {key!r}")
            bounds.append((op, _moment(value)))
    status = query.get("Status")
    matches = []
    for call in calls:
        if query.get("To") not in (None, call.request.to):
            continue
        if query.get("From") not in (None, call.request.from_):
            continue
        if status is not None and str(call.status) != status:
            continue
        started = call.start_time or call.date_created
        if all(_compare(started, op, bound) for op, bound in bounds):
            matches.append(call)
    return matches


def _moment(value: str) -> datetime | date:
    if "T" not in value:
        return date.fromisoformat(value)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _compare(started: datetime, op: str, bound: datetime | date) -> bool:
    if isinstance(bound, datetime):
        sign = (started > bound) - (started < bound)
    else:
        day = started.astimezone(UTC).date()
        sign = (day > bound) - (day < bound)
    return {"=": sign == 0, ">": sign >= 0, "<": sign <= 0}[op]


async def _form(request: Request) -> list[tuple[str, str]]:
    # Parsed by hand to keep repeated keys (StatusCallbackEvent) in order.
    body = (await request.body()).decode("utf-8", errors="replace")
    return parse_qsl(body, keep_blank_values=True)


class _TwilioError(JSONResponse):
    """An error answer with Twilio's body; `code` is Twilio's error code."""

    def __init__(self, status: int, code: int, message: str) -> None:
        self.code = code
        body = {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
        super().__init__(body, status_code=status)


def _error(status: int, code: int, message: str) -> _TwilioError:
    return _TwilioError(status, code, message)


def _not_found(path: str) -> _TwilioError:
    return _error(404, 20404, f"The requested resource {path} was not found")
