"""Twilio's requests to the server: signed, recorded, and for status callbacks optionally
duplicated and reordered as Twilio may deliver them.

Each request is signed with `X-Twilio-Signature` by the official `twilio` library over the
URL as given (the public one), and may be delivered to another origin (`deliver_to`, the
local server behind that public URL). Status callbacks of one call leave one at a time, in
order, unless `CallbackChaos` says otherwise; a failed delivery is recorded, never retried
(Twilio does not retry status callbacks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
from twilio.request_validator import RequestValidator

from voxline.telephony.twilio.signature import SIGNATURE_HEADER

logger = logging.getLogger(__name__)

CallbackKind = Literal["status", "amd", "connect"]


@dataclass(frozen=True, slots=True)
class CallbackChaos:
    """How unruly status callbacks are: each is sent twice with probability `duplicate`, and
    held back until after the next one of its call with probability `reorder`. Seeded, so a
    test run repeats exactly."""

    duplicate: float = 0.0
    reorder: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("duplicate", "reorder"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"CallbackChaos.{name} is a probability (0 to 1)")


@dataclass(frozen=True, slots=True)
class CallbackRecord:
    """One request the simulator made to the server, as sent, and what came back.

    `sent_at` is seconds since the simulator started; `status_code` is None when the server
    could not be reached (`error` says why); `duplicate` marks the second copy of a callback.
    """

    call_sid: str
    kind: CallbackKind
    url: str
    method: str
    params: dict[str, str]
    signature: str
    sent_at: float
    status_code: int | None
    response_text: str
    error: str | None = None
    duplicate: bool = False


@dataclass
class _Pending:
    kind: CallbackKind
    url: str
    method: str
    params: dict[str, str]
    duplicate: bool = False


class CallbackSender:
    """Signs and sends Twilio's requests for every call; records each in `records`."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        auth_token: str,
        clock: Callable[[], float],
        chaos: CallbackChaos,
        deliver_to: str | None = None,
    ) -> None:
        self.records: list[CallbackRecord] = []
        self._http = http
        self._validator = RequestValidator(auth_token)
        self._clock = clock
        self._chaos = chaos
        self._random = random.Random(chaos.seed)
        self._deliver_to = deliver_to
        self._queues: dict[str, _CallQueue] = {}

    async def request(
        self, call_sid: str, kind: CallbackKind, url: str, method: str, params: Mapping[str, str]
    ) -> CallbackRecord:
        """Send one signed request now and wait for its answer (the TwiML fetch, AMD)."""
        return await self._send(call_sid, _Pending(kind, url, method, dict(params)))

    def status(self, call_sid: str, url: str, method: str, params: Mapping[str, str]) -> None:
        """Queue a status callback of `call_sid`; it leaves after the ones queued before it."""
        queue = self._queues.get(call_sid)
        if queue is None:
            queue = self._queues[call_sid] = _CallQueue(
                lambda pending: self._send(call_sid, pending), self._shuffle
            )
        queue.put(_Pending("status", url, method, dict(params)))

    async def flush(self, call_sid: str) -> None:
        """Wait until every status callback of `call_sid` went out (held ones included)."""
        queue = self._queues.pop(call_sid, None)
        if queue is not None:
            await queue.close()

    async def aclose(self) -> None:
        """Stop sending (pending callbacks are dropped)."""
        queues, self._queues = list(self._queues.values()), {}
        for queue in queues:
            await queue.cancel()

    def _shuffle(self, final: bool) -> tuple[bool, bool]:
        """(hold it back, send it twice), drawn from the seeded generator."""
        hold = not final and self._random.random() < self._chaos.reorder
        twice = self._random.random() < self._chaos.duplicate
        return hold, twice

    async def _send(self, call_sid: str, pending: _Pending) -> CallbackRecord:
        signature, target, body = self._prepare(pending)
        sent_at = self._clock()
        headers = {SIGNATURE_HEADER: signature, "User-Agent": "TwilioProxy/1.1"}
        status_code: int | None = None
        text = ""
        error: str | None = None
        try:
            if pending.method == "GET":
                response = await self._http.get(target, headers=headers)
            else:
                response = await self._http.post(target, data=body, headers=headers)
            status_code, text = response.status_code, response.text
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
            logger.warning(
                "%s request for %s to %s failed: %s", pending.kind, call_sid, target, error
            )
        record = CallbackRecord(
            call_sid=call_sid,
            kind=pending.kind,
            url=pending.url,
            method=pending.method,
            params=pending.params,
            signature=signature,
            sent_at=sent_at,
            status_code=status_code,
            response_text=text,
            error=error,
            duplicate=pending.duplicate,
        )
        self.records.append(record)
        logger.info(
            "%s %s %s -> %s",
            call_sid,
            pending.kind,
            pending.params.get("CallStatus") or pending.params.get("AnsweredBy") or "",
            status_code if error is None else error,
        )
        return record

    def _prepare(self, pending: _Pending) -> tuple[str, str, dict[str, str] | None]:
        """(signature, URL to deliver to, form body): a GET carries the params in the URL."""
        if pending.method == "GET":
            parts = urlsplit(pending.url)
            query = "&".join(q for q in (parts.query, urlencode(pending.params)) if q)
            signed_url = urlunsplit(parts._replace(query=query))
            signature = self._validator.compute_signature(signed_url, {})
            return signature, self._target(signed_url), None
        signature = self._validator.compute_signature(pending.url, pending.params)
        return signature, self._target(pending.url), pending.params

    def _target(self, url: str) -> str:
        return url if self._deliver_to is None else rebase(url, self._deliver_to)


def rebase(url: str, origin: str) -> str:
    """`url` on `origin`'s scheme and host (ws/wss for a WebSocket URL), same path and query."""
    target = urlsplit(origin)
    parts = urlsplit(url)
    scheme = target.scheme
    if parts.scheme in ("ws", "wss"):
        scheme = {"http": "ws", "https": "wss"}.get(scheme, scheme)
    return urlunsplit(parts._replace(scheme=scheme, netloc=target.netloc))


class _CallQueue:
    """One call's status callbacks, sent one after another by a task of its own; `shuffle`
    says of each whether to hold it back behind the next and whether to send it twice."""

    def __init__(
        self,
        send: Callable[[_Pending], Awaitable[CallbackRecord]],
        shuffle: Callable[[bool], tuple[bool, bool]],
    ) -> None:
        self._send = send
        self._shuffle = shuffle
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def put(self, pending: _Pending) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        self._queue.put_nowait(pending)

    async def close(self) -> None:
        self._queue.put_nowait(None)
        if self._task is not None:
            await self._task

    async def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        held: list[_Pending] = []
        while True:
            pending = await self._queue.get()
            if pending is None:
                break
            hold, twice = self._shuffle(pending.params.get("CallStatus") in _FINAL_STATUSES)
            batch = [pending]
            if twice:
                batch.append(
                    _Pending(pending.kind, pending.url, pending.method, pending.params, True)
                )
            if hold and not held:
                held = batch
                continue
            for each in [*batch, *held]:
                await self._send(each)
            held = []
        for each in held:
            await self._send(each)


_FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
