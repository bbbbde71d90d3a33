"""Twilio's part in one outbound call, from dialing to the last status callback.

`CallPlayer.run` walks a created call through its outcome (answer, busy, no-answer, failed,
voicemail), sends the status callbacks the create asked for, fetches the TwiML from `Url`
once answered, and opens the `<Connect><Stream>` media stream as the callee with
`SimulatedTwilioCall`: a person speaks `Callee.lines`, one per agent turn, then hangs up; an
answering machine plays its greeting and a beep, then records until the server hangs up.
Machine detection follows Twilio: with `AsyncAmd=true` the verdict is POSTed to
`AsyncAmdStatusCallback` during the call, otherwise it comes with the TwiML fetch.

Why one module of ~420 lines: the callee's side of a simulated call (a person or a
voicemail machine) reads in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

import numpy as np

from voxline.audio.pcm import Pcm16
from voxline.simulator.dial import DialError, parse_connect_twiml
from voxline.simulator.playout import SAMPLE_RATE
from voxline.simulator.twilio_callbacks import CallbackSender
from voxline.simulator.twilio_calls import API_VERSION, CallStatus, OutboundCall
from voxline.simulator.twilio_peer import CallEnded, SimulatedTwilioCall

logger = logging.getLogger(__name__)

Line = Pcm16 | str


class Outcome(enum.StrEnum):
    """What happens when a number is dialed. `invalid` and `unreachable` are refused at
    create (21211, 21214); the others are played out."""

    ANSWER = "answer"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    FAILED = "failed"
    VOICEMAIL = "voicemail"
    INVALID = "invalid"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True, slots=True)
class Timing:
    """Delays in seconds, short by default so tests run fast.

    `dial`: from initiated to ringing (or to busy, failed); `ring`: from ringing to the
    answer (a ring longer than the create's `Timeout` is a no-answer); `no_answer`: how long
    a `no-answer` number rings (None: the create's `Timeout`, as Twilio); `amd`: from the
    answer to a machine detection verdict that needs no greeting (`human`, `machine_start`).
    """

    dial: float = 0.02
    ring: float = 0.02
    no_answer: float | None = 0.1
    amd: float = 0.05


@dataclass(frozen=True, slots=True)
class Callee:
    """Who answers and what they do on the media stream.

    A person waits for the agent's turn (its audio, then `turn_silence_ms` of silence, at most
    `reply_timeout` s for it to start), says the next of `lines` (8 kHz mono PCM16, or text
    spoken by the local Piper voice), and after the agent's answer to the last one hangs up.
    An answering machine plays `greeting` (default: a synthetic voice-like sound) and a beep,
    then records for `record_seconds` before hanging up. Nobody stays on longer than
    `max_seconds`.
    """

    lines: Sequence[Line] = ()
    greeting: Line | None = None
    reply_timeout: float = 5.0
    turn_silence_ms: float = 600.0
    record_seconds: float = 30.0
    max_seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class SpokenCallee:
    """A `Callee` with every line as PCM, ready to be played."""

    callee: Callee
    lines: tuple[Pcm16, ...]
    greeting: Pcm16
    beep: Pcm16


def beep(seconds: float = 0.4, hz: float = 1000.0, level: int = 8000) -> Pcm16:
    """An answering machine's beep: a pure tone."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (np.sin(2 * np.pi * hz * t) * level).astype(np.int16)


def synthetic_greeting(seconds: float = 1.2) -> Pcm16:
    """A stand-in for a spoken greeting: a 180 Hz voice-like buzz in syllable-rate bursts."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    voice = sum(np.sin(2 * np.pi * 180 * k * t) / k for k in range(1, 6))
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)
    return (voice * syllables * 3000).astype(np.int16)


class CallPlayer:
    """Plays Twilio's part in `call` for `outcome`; `run` returns once its last callback
    went out. `stream_target` maps a TwiML stream URL to where to connect; `on_end` hears
    of the call's final status before its callback goes out."""

    def __init__(
        self,
        call: OutboundCall,
        outcome: Outcome,
        callee: SpokenCallee,
        timing: Timing,
        sender: CallbackSender,
        dial_delay: float,
        stream_target: Callable[[str], str],
        on_end: Callable[[OutboundCall], None],
    ) -> None:
        self._call = call
        self._outcome = outcome
        self._callee = callee
        self._timing = timing
        self._sender = sender
        self._dial_delay = dial_delay
        self._stream_target = stream_target
        self._on_end = on_end
        self._sequence = 0
        self._answered_at = 0.0

    async def run(self) -> None:
        call = self._call
        try:
            await self._play()
        except Exception as exc:
            # A simulator fault must end the call visibly, never leave it hanging.
            logger.exception("simulated call %s failed", call.sid)
            call.errors.append(f"simulator error: {exc!r}")
            if not call.status.terminal:
                self._end(_cut_off(call.status), 500)
        finally:
            for stream in call.streams:
                with contextlib.suppress(Exception):
                    await stream.hang_up()
        await self._sender.flush(call.sid)
        call.ended.set()

    # --- the outcome -------------------------------------------------------------------------

    async def _play(self) -> None:
        call, timing = self._call, self._timing
        if await self._hung_up_within(self._dial_delay):
            self._end(CallStatus.CANCELED, 487)
            return
        self._move(CallStatus.INITIATED, "initiated")
        if await self._hung_up_within(timing.dial):
            self._end(CallStatus.CANCELED, 487)
            return
        if self._outcome in (Outcome.BUSY, Outcome.FAILED):
            busy = self._outcome is Outcome.BUSY
            self._end(CallStatus.BUSY if busy else CallStatus.FAILED, 486 if busy else 503)
            return
        self._move(CallStatus.RINGING, "ringing")
        timeout = float(call.request.timeout)
        gives_up = self._outcome is Outcome.NO_ANSWER or timing.ring >= timeout
        ring_for = timing.ring
        if self._outcome is Outcome.NO_ANSWER:
            ring_for = timeout if timing.no_answer is None else timing.no_answer
        if await self._hung_up_within(min(ring_for, timeout)):
            self._end(CallStatus.CANCELED, 487)
            return
        if gives_up:
            self._end(CallStatus.NO_ANSWER, 487)
            return
        self._move(CallStatus.IN_PROGRESS, "answered")
        self._answered_at = asyncio.get_running_loop().time()
        await self._connected()
        self._end(CallStatus.COMPLETED, 200)

    async def _connected(self) -> None:
        """The answered call: machine detection, the TwiML, then its media streams."""
        request = self._call.request
        machine = self._outcome is Outcome.VOICEMAIL
        detection = request.machine_detection
        greeted = False
        if detection is not None and not request.async_amd:
            # Twilio holds the TwiML fetch until detection decides.
            greeted = machine and detection == "DetectMessageEnd"
            wait = self._timing.amd
            if greeted:
                wait = _seconds(self._callee.greeting) + _seconds(self._callee.beep)
            if await self._hung_up_within(wait):
                return
            self._call.answered_by = _verdict(detection, machine)
        twiml = request.twiml or await self._fetch_twiml()
        if twiml is None:
            return
        beeped = asyncio.Event()
        amd = asyncio.create_task(self._async_amd(machine, beeped))
        try:
            next_twiml: str | None = twiml
            while next_twiml is not None:
                next_twiml = await self._stream(
                    next_twiml, machine=machine, greeted=greeted, beeped=beeped
                )
                greeted = True
        finally:
            amd.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await amd

    async def _stream(
        self, twiml: str, *, machine: bool, greeted: bool, beeped: asyncio.Event
    ) -> str | None:
        """Run one TwiML document: a `<Connect><Stream>` until someone ends it; returns the
        TwiML the call was redirected to meanwhile, if any."""
        call = self._call
        call.twiml.append(twiml)
        call.redirected.clear()
        if call.hang_up_requested.is_set() or "<Stream" not in twiml:
            return None  # <Hangup/>, <Say>, <Dial>: the call ends once it has run
        try:
            url, relay = parse_connect_twiml(twiml)
        except DialError as exc:
            call.errors.append(str(exc))
            return None
        stream = SimulatedTwilioCall(
            self._stream_target(url),
            relay=relay,
            account_sid=call.account_sid,
            call_sid=call.sid,
        )
        try:
            await stream.start()
        except Exception as exc:
            call.errors.append(f"could not open the media stream at {url}: {exc!r}")
            return None
        call.streams.append(stream)
        if machine:
            script = self._answering_machine(stream, greeted, beeped)
        else:
            script = self._person(stream)
        waits = {
            asyncio.create_task(script),
            asyncio.create_task(call.hang_up_requested.wait()),
            asyncio.create_task(call.redirected.wait()),
            asyncio.create_task(stream.wait_closed(self._callee.callee.max_seconds)),
        }
        try:
            await asyncio.wait(
                waits,
                timeout=self._callee.callee.max_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        redirected = call.redirected.is_set() and not call.hang_up_requested.is_set()
        # Twilio sends `stop` whenever the call leaves the stream, whoever ended it.
        await stream.hang_up()
        return call.redirects[-1] if redirected and call.redirects else None

    # --- the callee ----------------------------------------------------------------------------

    async def _person(self, stream: SimulatedTwilioCall) -> None:
        since = 0.0
        with contextlib.suppress(CallEnded):
            for line in self._callee.lines:
                await self._agent_turn(stream, since)
                utterance = await stream.speak(line)
                since = utterance.ended_at or stream.now()
            await self._agent_turn(stream, since)

    async def _agent_turn(self, stream: SimulatedTwilioCall, since: float) -> None:
        """Wait for the agent to speak (from `since`) and fall silent; a turn that never
        starts ends the wait after `reply_timeout`."""
        callee = self._callee.callee
        try:
            await stream.wait_for_agent_audio(callee.reply_timeout, since=since)
        except TimeoutError:
            return
        with contextlib.suppress(TimeoutError):
            await stream.wait_until_agent_silent(callee.turn_silence_ms, callee.max_seconds)

    async def _answering_machine(
        self, stream: SimulatedTwilioCall, greeted: bool, beeped: asyncio.Event
    ) -> None:
        with contextlib.suppress(CallEnded):
            if not greeted:
                await stream.speak(self._callee.greeting)
                await stream.speak(self._callee.beep)
            beeped.set()
            await asyncio.sleep(self._callee.callee.record_seconds)

    # --- machine detection -----------------------------------------------------------------

    async def _async_amd(self, machine: bool, beeped: asyncio.Event) -> None:
        """POST the verdict to `AsyncAmdStatusCallback` when detection would reach it."""
        request = self._call.request
        if request.machine_detection is None or not request.async_amd:
            return
        if machine and request.machine_detection == "DetectMessageEnd":
            await beeped.wait()
        else:
            await asyncio.sleep(self._timing.amd)
        verdict = _verdict(request.machine_detection, machine)
        self._call.answered_by = verdict
        if request.async_amd_status_callback is None:
            return
        elapsed = asyncio.get_running_loop().time() - self._answered_at
        params = {
            "CallSid": self._call.sid,
            "AccountSid": self._call.account_sid,
            "AnsweredBy": verdict,
            "MachineDetectionDuration": str(round(elapsed * 1000)),
        }
        await self._sender.request(
            self._call.sid,
            "amd",
            request.async_amd_status_callback,
            request.async_amd_status_callback_method,
            params,
        )

    # --- requests to the server --------------------------------------------------------------

    async def _fetch_twiml(self) -> str | None:
        call = self._call
        assert call.request.url is not None
        params = self._call_params()
        if call.answered_by is not None:
            params["AnsweredBy"] = call.answered_by
        record = await self._sender.request(
            call.sid, "connect", call.request.url, call.request.method, params
        )
        if record.status_code != 200:
            # Twilio would say "an application error has occurred" and hang up.
            call.errors.append(
                f"TwiML fetch from {call.request.url} answered "
                f"{record.status_code or record.error}: {record.response_text[:200]}"
            )
            return None
        return record.response_text

    def _call_params(self) -> dict[str, str]:
        call = self._call
        return {
            "CallSid": call.sid,
            "AccountSid": call.account_sid,
            "From": call.request.from_,
            "To": call.request.to,
            "Caller": call.request.from_,
            "Called": call.request.to,
            "CallStatus": str(call.status),
            "Direction": "outbound-api",
            "ApiVersion": API_VERSION,
        }

    def _move(self, status: CallStatus, event: str) -> None:
        self._call.move(status)
        self._status_callback(event)

    def _end(self, status: CallStatus, sip_response_code: int) -> None:
        call = self._call
        call.sip_response_code = sip_response_code
        call.move(status)
        self._on_end(call)
        self._status_callback("completed")

    def _status_callback(self, event: str) -> None:
        request = self._call.request
        if request.status_callback is None or event not in request.status_callback_events:
            return
        params = self._call_params()
        params["CallbackSource"] = "call-progress-events"
        params["SequenceNumber"] = str(self._sequence)
        params["Timestamp"] = format_datetime(datetime.now(UTC))
        self._sequence += 1
        if self._call.answered_by is not None and not request.async_amd:
            params["AnsweredBy"] = self._call.answered_by
        if self._call.status.terminal:
            duration = self._call.duration
            params["CallDuration"] = str(duration)
            params["Duration"] = str(math.ceil(duration / 60))
            params["SipResponseCode"] = str(self._call.sip_response_code)
        self._sender.status(
            self._call.sid, request.status_callback, request.status_callback_method, params
        )

    async def _hung_up_within(self, seconds: float) -> bool:
        """Wait `seconds`; True as soon as the call is hung up through REST meanwhile."""
        if self._call.hang_up_requested.is_set():
            return True
        try:
            await asyncio.wait_for(self._call.hang_up_requested.wait(), max(seconds, 0.0))
        except TimeoutError:
            return False
        return True


def _cut_off(status: CallStatus) -> CallStatus:
    """How a call ends when the simulator itself fails in `status`."""
    if status is CallStatus.QUEUED:
        return CallStatus.CANCELED
    return CallStatus.COMPLETED if status is CallStatus.IN_PROGRESS else CallStatus.FAILED


def _verdict(detection: str, machine: bool) -> str:
    if not machine:
        return "human"
    return "machine_end_beep" if detection == "DetectMessageEnd" else "machine_start"


def _seconds(pcm: Pcm16) -> float:
    return len(pcm) / SAMPLE_RATE
