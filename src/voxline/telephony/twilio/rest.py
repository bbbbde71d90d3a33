"""The few Twilio REST calls voxline makes: place a call, hang up, redirect (transfer), and
fetch or list calls (to reconcile an outbound attempt whose create went unrecorded).

Form-encoded POSTs with Basic auth, as the official library sends them. Hanging up is
idempotent and retried on 5xx and network errors; redirect and create are retried only when
the request cannot have reached Twilio (connection refused), so a call is never placed or
transferred twice. Failures raise `TwilioApiError`. The auth token is never logged.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any

import httpx
from twilio.twiml.voice_response import VoiceResponse

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.twilio.com"
ERROR_NOT_FOUND = 20404

_CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
_RETRY_STATUSES = frozenset({500, 502, 503, 504})
# Before the request was written: safe to resend even when the call is not idempotent.
_NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout)
_TRANSIENT_ERRORS = (httpx.TransportError,)


class TwilioApiError(Exception):
    """Twilio answered with an error (or could not be reached: `status` 0)."""

    def __init__(self, status: int, code: int | None, message: str) -> None:
        super().__init__(f"Twilio API error {status} (code {code}): {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class CallInfo:
    """The call resource as Twilio returned it."""

    sid: str
    status: str
    to: str
    from_: str
    direction: str
    date_created: datetime | None = None
    duration: int | None = None


class TwilioRestClient:
    """Async client for one Twilio account. Use as `async with`, or call `aclose()`.

    When `http` is given the caller owns it (and closes it); otherwise one is created here.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        base_url: str = DEFAULT_BASE_URL,
        http: httpx.AsyncClient | None = None,
        *,
        timeout: float = 10.0,
        max_retries: int = 2,
        backoff: float = 0.2,
    ) -> None:
        if not _ACCOUNT_SID.match(account_sid):
            raise ValueError(f"not a Twilio account SID (AC + 32 hex digits): {account_sid!r}")
        if not auth_token:
            raise ValueError("a Twilio auth token is required")
        self._account_sid = account_sid
        self._auth = httpx.BasicAuth(account_sid, auth_token)
        self._base_url = base_url.rstrip("/")
        self._calls_url = f"{self._base_url}/2010-04-01/Accounts/{account_sid}/Calls"
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient()
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))
        self._max_retries = max_retries
        self._backoff = backoff

    async def __aenter__(self) -> TwilioRestClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def hang_up(self, call_sid: str) -> None:
        """End a live call. A call that already ended (404, code 20404) counts as success."""
        try:
            await self._post(_call_path(call_sid), [("Status", "completed")], idempotent=True)
        except TwilioApiError as exc:
            if exc.status == 404 and exc.code == ERROR_NOT_FOUND:
                logger.info("twilio call %s had already ended", call_sid)
                return
            raise

    async def redirect(self, call_sid: str, twiml: str) -> None:
        """Make a live call run `twiml` now (e.g. `dial_twiml` to transfer it)."""
        await self._post(_call_path(call_sid), [("Twiml", twiml)], idempotent=False)

    async def create_call(
        self,
        to: str,
        from_: str,
        url: str,
        status_callback: str,
        status_callback_events: Sequence[str],
        machine_detection: str | None = None,
        timeout: int | None = None,  # noqa: ASYNC109 (ring time in seconds, sent to Twilio)
        async_amd_callback: str | None = None,
    ) -> CallInfo:
        """Place an outbound call; Twilio fetches TwiML from `url` once it is answered.

        `machine_detection` is `Enable` or `DetectMessageEnd`; with `async_amd_callback` the
        call connects at once and the verdict is POSTed there later (`AsyncAmd=true`).
        `timeout` is how many seconds it may ring. Status callbacks are POSTed to
        `status_callback` for each listed event.
        """
        form = [("To", to), ("From", from_), ("Url", url), ("StatusCallback", status_callback)]
        form += [("StatusCallbackEvent", event) for event in status_callback_events]
        form.append(("StatusCallbackMethod", "POST"))
        if machine_detection is not None:
            form.append(("MachineDetection", machine_detection))
            if async_amd_callback is not None:
                form.append(("AsyncAmd", "true"))
                form.append(("AsyncAmdStatusCallback", async_amd_callback))
                form.append(("AsyncAmdStatusCallbackMethod", "POST"))
        if timeout is not None:
            form.append(("Timeout", str(timeout)))
        body = await self._post(".json", form, idempotent=False)
        return _call_info(body, "call created but response lacks")

    async def fetch_call(self, call_sid: str) -> CallInfo:
        """The call's current state (404 / 20404 raises `TwilioApiError`)."""
        body = await self._get(self._calls_url + _call_path(call_sid), {})
        return _call_info(body, "call fetched but response lacks")

    async def list_calls(self, to: str, from_: str, started_on_or_after: date) -> list[CallInfo]:
        """Calls to `to` from `from_` started (or created) on or after that UTC day, every
        page of them, newest first."""
        params: dict[str, str] | None = {
            "To": to,
            "From": from_,
            "StartTime>": started_on_or_after.isoformat(),
            "PageSize": "100",
        }
        url = self._calls_url + ".json"
        calls: list[CallInfo] = []
        while True:
            body = await self._get(url, params or {})
            for item in body.get("calls") or []:
                if isinstance(item, dict):
                    calls.append(_call_info(item, "listed call lacks"))
            next_page = body.get("next_page_uri")
            if not next_page:
                return calls
            url, params = self._base_url + str(next_page), None

    async def _get(self, url: str, params: dict[str, str]) -> dict[str, Any]:
        attempt = 0
        while True:
            try:
                response = await self._http.get(
                    url,
                    params=params,
                    auth=self._auth,
                    headers={"Accept": "application/json", "User-Agent": "voxline"},
                    timeout=self._timeout,
                )
            except _TRANSIENT_ERRORS as exc:
                if attempt >= self._max_retries:
                    raise TwilioApiError(0, None, f"cannot reach Twilio: {exc!r}") from exc
            else:
                if response.is_success:
                    return _json(response)
                if response.status_code not in _RETRY_STATUSES or attempt >= self._max_retries:
                    raise _error(response)
            attempt += 1
            await asyncio.sleep(self._backoff * 2 ** (attempt - 1))

    async def _post(
        self, path: str, form: list[tuple[str, str]], *, idempotent: bool
    ) -> dict[str, Any]:
        url = self._calls_url + path
        attempt = 0
        while True:
            try:
                response = await self._http.post(
                    url,
                    data=_form(form),
                    auth=self._auth,
                    headers={"Accept": "application/json", "User-Agent": "voxline"},
                    timeout=self._timeout,
                )
            except _TRANSIENT_ERRORS as exc:
                retryable = idempotent or isinstance(exc, _NOT_SENT_ERRORS)
                if not retryable or attempt >= self._max_retries:
                    raise TwilioApiError(0, None, f"cannot reach Twilio: {exc!r}") from exc
            else:
                if response.is_success:
                    return _json(response)
                if not (idempotent and response.status_code in _RETRY_STATUSES):
                    raise _error(response)
                if attempt >= self._max_retries:
                    raise _error(response)
            attempt += 1
            logger.warning("twilio POST %s failed, retry %d", path, attempt)
            await asyncio.sleep(self._backoff * 2 ** (attempt - 1))


def dial_twiml(number: str, caller_id: str | None) -> str:
    """`<Response><Dial callerId=...><Number>number</Number></Dial></Response>` (transfer)."""
    for label, value in (("number", number), ("caller_id", caller_id)):
        if value is not None and not _E164.match(value):
            raise ValueError(f"{label} must be an E.164 phone number like +14155550123: {value!r}")
    response = VoiceResponse()
    dial = response.dial(caller_id=caller_id)
    dial.number(number)
    return str(response)


def _call_info(body: dict[str, Any], lacking: str) -> CallInfo:
    try:
        duration = body.get("duration")
        return CallInfo(
            sid=str(body["sid"]),
            status=str(body["status"]),
            to=str(body.get("to", "")),
            from_=str(body.get("from", "")),
            direction=str(body.get("direction", "outbound-api")),
            date_created=_rfc2822(body.get("date_created")),
            duration=int(duration)
            if isinstance(duration, str | int) and str(duration).isdigit()
            else None,
        )
    except KeyError as exc:
        raise TwilioApiError(0, None, f"{lacking} {exc}") from None


def _rfc2822(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


def _call_path(call_sid: str) -> str:
    if not _CALL_SID.match(call_sid):
        raise ValueError(f"not a Twilio call SID (CA + 32 hex digits): {call_sid!r}")
    return f"/{call_sid}.json"


def _form(fields: list[tuple[str, str]]) -> dict[str, list[str]]:
    """httpx encodes a list value as repeated keys, in order, as Twilio expects."""
    out: dict[str, list[str]] = {}
    for key, value in fields:
        out.setdefault(key, []).append(value)
    return out


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise TwilioApiError(response.status_code, None, "Twilio answered without a JSON object")
    return body


def _error(response: httpx.Response) -> TwilioApiError:
    code: int | None = None
    message = response.reason_phrase or "error"
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        raw_code = body.get("code")
        code = raw_code if isinstance(raw_code, int) else None
        message = str(body.get("message", message))
    return TwilioApiError(response.status_code, code, message)
