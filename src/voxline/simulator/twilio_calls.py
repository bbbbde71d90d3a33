"""One outbound call at the simulated Twilio: what the create asked for, and its life.

The call's status is a small state machine (the transition table below); an illegal move
raises `IllegalCallTransition`, so a simulator bug can never report `ringing` after
`completed`. `CallRequest.from_form` reads a create's form fields as Twilio documents them.

    queued      -> initiated | canceled
    initiated   -> ringing | busy | failed | canceled
    ringing     -> in-progress | busy | no-answer | failed | canceled
    in-progress -> completed
"""

from __future__ import annotations

import asyncio
import enum
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from voxline.simulator.twilio_peer import SimulatedTwilioCall

API_VERSION = "2010-04-01"
DEFAULT_RING_TIMEOUT = 60
MAX_RING_TIMEOUT = 600


class CallStatus(enum.StrEnum):
    QUEUED = "queued"
    INITIATED = "initiated"
    RINGING = "ringing"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    BUSY = "busy"
    FAILED = "failed"
    NO_ANSWER = "no-answer"
    CANCELED = "canceled"

    @property
    def terminal(self) -> bool:
        return not _TRANSITIONS[self]


_TRANSITIONS: dict[CallStatus, frozenset[CallStatus]] = {
    CallStatus.QUEUED: frozenset({CallStatus.INITIATED, CallStatus.CANCELED}),
    CallStatus.INITIATED: frozenset(
        {CallStatus.RINGING, CallStatus.BUSY, CallStatus.FAILED, CallStatus.CANCELED}
    ),
    CallStatus.RINGING: frozenset(
        {
            CallStatus.IN_PROGRESS,
            CallStatus.BUSY,
            CallStatus.NO_ANSWER,
            CallStatus.FAILED,
            CallStatus.CANCELED,
        }
    ),
    CallStatus.IN_PROGRESS: frozenset({CallStatus.COMPLETED}),
    CallStatus.COMPLETED: frozenset(),
    CallStatus.BUSY: frozenset(),
    CallStatus.FAILED: frozenset(),
    CallStatus.NO_ANSWER: frozenset(),
    CallStatus.CANCELED: frozenset(),
}


class IllegalCallTransition(RuntimeError):
    """A call was asked to move to a status its current one cannot lead to."""


class CreateRefused(ValueError):
    """A create request Twilio would refuse: `status`, Twilio's `code` and its message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class CallRequest:
    """The fields of a create request the simulator acts on."""

    to: str
    from_: str
    url: str | None
    twiml: str | None
    method: str
    status_callback: str | None
    status_callback_method: str
    status_callback_events: frozenset[str]
    machine_detection: str | None
    async_amd: bool
    async_amd_status_callback: str | None
    async_amd_status_callback_method: str
    timeout: int

    @classmethod
    def from_form(cls, form: Sequence[tuple[str, str]]) -> CallRequest:
        """Read a create's form; `CreateRefused` with Twilio's code for what it would refuse."""

        def first(key: str) -> str | None:
            return next((value for name, value in form if name == key), None)

        to, from_, url, twiml = first("To"), first("From"), first("Url"), first("Twiml")
        if not to:
            raise CreateRefused(400, 21201, "No 'To' number is specified")
        if not from_:
            raise CreateRefused(400, 21213, "No 'From' number is specified")
        if not url and not twiml:
            raise CreateRefused(400, 21205, "Either Url or Twiml is required")
        machine_detection = first("MachineDetection")
        if machine_detection not in (None, "Enable", "DetectMessageEnd"):
            raise CreateRefused(
                400,
                21626,
                f"MachineDetection must be Enable or DetectMessageEnd, not {machine_detection!r}",
            )
        events = [value for name, value in form if name == "StatusCallbackEvent"]
        unknown = set(events) - {"initiated", "ringing", "answered", "completed"}
        if unknown:
            raise CreateRefused(400, 21626, f"Invalid StatusCallbackEvent {sorted(unknown)}")
        raw_timeout = first("Timeout")
        try:
            timeout = int(raw_timeout) if raw_timeout else DEFAULT_RING_TIMEOUT
        except ValueError:
            raise CreateRefused(400, 21218, f"Invalid Timeout {raw_timeout!r}") from None
        return cls(
            to=to,
            from_=from_,
            url=url,
            twiml=twiml,
            method=(first("Method") or "POST").upper(),
            status_callback=first("StatusCallback"),
            status_callback_method=(first("StatusCallbackMethod") or "POST").upper(),
            # Without StatusCallbackEvent, Twilio reports `completed` only.
            status_callback_events=frozenset(events or ["completed"]),
            machine_detection=machine_detection,
            async_amd=(first("AsyncAmd") or "false").lower() == "true",
            async_amd_status_callback=first("AsyncAmdStatusCallback"),
            async_amd_status_callback_method=(
                first("AsyncAmdStatusCallbackMethod") or "POST"
            ).upper(),
            timeout=min(max(timeout, 1), MAX_RING_TIMEOUT),
        )


@dataclass(eq=False)
class OutboundCall:
    """A call created through the simulated Calls API. `twiml` holds each TwiML document it
    ran (fetched, given at create, redirected to); `streams` are its media streams as
    the callee saw them (what was heard, marks, clears); `errors` what went wrong on the
    server's side (a TwiML fetch refused, a stream that would not open); `ended` is set once
    its last callback went out."""

    account_sid: str
    request: CallRequest
    sid: str = field(default_factory=lambda: "CA" + secrets.token_hex(16))
    status: CallStatus = CallStatus.QUEUED
    queue_seconds: float = 0.0
    date_created: datetime = field(default_factory=lambda: datetime.now(UTC))
    start_time: datetime | None = None
    answer_time: datetime | None = None
    end_time: datetime | None = None
    answered_by: str | None = None
    sip_response_code: int | None = None
    twiml: list[str] = field(default_factory=list)
    redirects: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    streams: list[SimulatedTwilioCall] = field(default_factory=list)
    hang_up_requested: asyncio.Event = field(default_factory=asyncio.Event)
    redirected: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def move(self, status: CallStatus) -> None:
        """Go to `status`, stamping start, answer and end times; illegal moves raise."""
        if status not in _TRANSITIONS[self.status]:
            allowed = ", ".join(sorted(_TRANSITIONS[self.status])) or "nothing (it has ended)"
            raise IllegalCallTransition(
                f"call {self.sid} cannot go from {self.status} to {status}; allowed: {allowed}"
            )
        now = datetime.now(UTC)
        self.status = status
        if status is CallStatus.INITIATED:
            self.start_time = now
        elif status is CallStatus.IN_PROGRESS:
            self.answer_time = now
        elif status.terminal:
            self.end_time = now

    @property
    def duration(self) -> int:
        """Whole seconds from answer to end (rounded up), 0 for a call never answered."""
        if self.answer_time is None:
            return 0
        end = self.end_time or datetime.now(UTC)
        return math.ceil((end - self.answer_time).total_seconds())

    def resource(self) -> dict[str, Any]:
        """The call as Twilio's REST API returns it."""

        def stamp(moment: datetime | None) -> str | None:
            return None if moment is None else format_datetime(moment)

        return {
            "sid": self.sid,
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "to": self.request.to,
            "to_formatted": self.request.to,
            "from": self.request.from_,
            "from_formatted": self.request.from_,
            "status": str(self.status),
            "direction": "outbound-api",
            "date_created": stamp(self.date_created),
            "date_updated": stamp(self.end_time or self.answer_time or self.start_time)
            or stamp(self.date_created),
            "start_time": stamp(self.start_time),
            "end_time": stamp(self.end_time),
            "duration": str(self.duration) if self.status.terminal else None,
            "price": None,
            "price_unit": "USD",
            "answered_by": self.answered_by,
            "parent_call_sid": None,
            "queue_time": str(round(self.queue_seconds * 1000)),
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}.json",
        }
