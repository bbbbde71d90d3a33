"""A simulated Twilio side of one media stream, over a real WebSocket, in real time.

It behaves as Twilio does towards our server: `connected`, `start`, then caller audio every
20 ms on an absolute schedule (silence when the caller says nothing); outbound audio goes
into a playout buffer drained at 8 kHz, marks echo once the audio before them has played,
`clear` empties the buffer and echoes pending marks at once. It records what the caller
heard and when, which is how voxline measures first response, turn latency and barge-in.

    async with SimulatedTwilioCall(url, relay=token) as call:
        await call.wait_for_agent_audio(timeout=5)      # the greeting
        await call.say(speech).wait_sent()
        await call.wait_for_agent_audio(timeout=5)
    print(call.first_response, [t.latency for t in call.turns()])

Why one module of ~430 lines: it is Twilio's side of one stream, kept whole so that its
timing (playout, marks, clear) reads in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Concatenate, ParamSpec

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from voxline.audio.mulaw import decode_mulaw, encode_mulaw
from voxline.audio.pcm import Pcm16
from voxline.simulator.caller import FRAME_SAMPLES, CallerAudio
from voxline.simulator.metrics import (
    CallerUtterance,
    Gap,
    Turn,
    agent_track,
    playout_gaps,
    turns,
    write_stereo_wav,
)
from voxline.simulator.playout import (
    SAMPLE_RATE,
    PlayoutBuffer,
    Segment,
    first_audible,
    last_audible,
)
from voxline.telephony.twilio.media import (
    MediaStreamError,
    OutboundClear,
    OutboundMark,
    OutboundMedia,
    connected_json,
    dtmf_json,
    inbound_media_json,
    mark_echo_json,
    parse_outbound,
    start_json,
    stop_json,
)

logger = logging.getLogger(__name__)
_P = ParamSpec("_P")

FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE
# About -54 dBFS: quieter agent samples (dither, codec noise) do not count as speech.
DEFAULT_AUDIBLE_THRESHOLD = 64
_SILENCE = encode_mulaw(np.zeros(FRAME_SAMPLES, dtype=np.int16))


class CallEnded(Exception):
    """The stream is closed, so what was awaited can no longer happen."""


@dataclass(frozen=True, slots=True)
class MarkRecord:
    """A mark the server sent and when it was echoed; `cleared` when a clear released it."""

    name: str
    received_at: float
    echoed_at: float
    cleared: bool


class SimulatedTwilioCall:
    """One simulated phone call. Use as `async with`; all times are seconds since `start`."""

    def __init__(
        self,
        url: str,
        *,
        relay: str | None = None,
        custom_parameters: Mapping[str, str] | None = None,
        account_sid: str | None = None,
        call_sid: str | None = None,
        stream_sid: str | None = None,
        wav_path: Path | str | None = None,
        audible_threshold: int = DEFAULT_AUDIBLE_THRESHOLD,
        open_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.account_sid = account_sid or "AC" + secrets.token_hex(16)
        self.call_sid = call_sid or "CA" + secrets.token_hex(16)
        self.stream_sid = stream_sid or "MZ" + secrets.token_hex(16)
        self.custom_parameters = dict(custom_parameters or {})
        if relay is not None:
            self.custom_parameters["relay"] = relay
        self.audible_threshold = audible_threshold
        self._wav_path = Path(wav_path) if wav_path is not None else None
        self._open_timeout = open_timeout

        self.utterances: list[CallerUtterance] = []
        self.marks: list[MarkRecord] = []
        self.clears: list[float] = []
        self.dtmf_sent: list[tuple[float, str]] = []
        self.errors: list[str] = []
        self.closed_at: float | None = None
        self.closed_by_server = False

        self._playout = PlayoutBuffer()
        self._caller = CallerAudio()
        self._caller_frames: list[Pcm16 | None] = []
        self._ws: ClientConnection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._t0 = 0.0
        self._sequence = 0
        self._send_lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._failure: Exception | None = None

    # --- life cycle ----------------------------------------------------------------------

    async def __aenter__(self) -> SimulatedTwilioCall:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.hang_up()
        if self._wav_path is not None:
            self.write_wav(self._wav_path)
        if self._failure is not None and exc is None:
            raise RuntimeError("the simulated Twilio call failed") from self._failure

    async def start(self) -> None:
        """Connect, send `connected` and `start`, and begin streaming caller audio."""
        self._loop = asyncio.get_running_loop()
        self._ws = await connect(
            self.url, open_timeout=self._open_timeout, compression=None, max_size=2**22
        )
        try:
            await self._ws.send(connected_json())
            self._t0 = self._loop.time()
            await self._send(
                start_json, self.stream_sid, self.account_sid, self.call_sid, self.custom_parameters
            )
        except BaseException:
            await self._ws.close()
            raise
        self._tasks = [
            asyncio.create_task(self._guard(self._stream_caller_audio())),
            asyncio.create_task(self._guard(self._receive())),
            asyncio.create_task(self._guard(self._echo_due_marks())),
        ]

    async def hang_up(self) -> None:
        """The caller hangs up: send `stop` and close the socket (no-op once closed)."""
        ws = self._ws
        if ws is not None and self.closed_at is None:
            with contextlib.suppress(ConnectionClosed):
                await self._send(stop_json, self.stream_sid, self.account_sid, self.call_sid)
            self._closed(by_server=False)
        await self._stop_tasks()
        if ws is not None:
            await ws.close()

    async def wait_closed(self, timeout: float) -> float:  # noqa: ASYNC109
        """Wait for the server to end the stream; returns when it did."""
        async with asyncio.timeout(timeout):
            while self.closed_at is None:
                await self._wait_change(timeout)
        return self.closed_at

    # --- the caller's actions -------------------------------------------------------------

    def now(self) -> float:
        """Seconds since `start` was sent."""
        if self._loop is None:
            raise RuntimeError("the call has not started")
        return self._loop.time() - self._t0

    def say(self, pcm: Pcm16) -> CallerUtterance:
        """Queue caller speech (mono PCM16, 8 kHz) after anything queued before it."""
        utterance = self._caller.queue(pcm, self.now())
        self.utterances.append(utterance)
        return utterance

    async def speak(self, pcm: Pcm16) -> CallerUtterance:
        """`say(pcm)`, returning once its last frame is sent; `CallEnded` if the stream
        closes first."""
        utterance = self.say(pcm)
        sent = asyncio.ensure_future(utterance.wait_sent())
        try:
            while not sent.done():
                if self.closed_at is not None:
                    raise CallEnded("the stream closed while the caller was speaking")
                changed = asyncio.ensure_future(self._changed.wait())
                try:
                    await asyncio.wait({sent, changed}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    changed.cancel()
        finally:
            sent.cancel()
        return utterance

    async def press(self, digit: str) -> None:
        """Send a DTMF key press now."""
        self._require_open()
        await self._send(dtmf_json, self.stream_sid, digit)
        self.dtmf_sent.append((self.now(), digit))

    # --- what the caller heard -------------------------------------------------------------

    @property
    def segments(self) -> list[Segment]:
        """Every outbound media message, with when it played (and whether it was cut)."""
        return self._playout.segments

    @property
    def first_response(self) -> float | None:
        """When agent audio was first heard (seconds after `start`), if it has been."""
        heard = first_audible(self.segments, 0.0, self.audible_threshold)
        return heard if heard is not None and heard <= self.now() else None

    # The waits take a timeout because what they wait for is judged on the simulated clock.
    async def wait_for_agent_audio(self, timeout: float, since: float | None = None) -> float:  # noqa: ASYNC109
        """When agent audio is first heard at or after `since` (default: now).

        Raises TimeoutError, or `CallEnded` once the stream closed with no such audio left.
        """
        since = self.now() if since is None else since
        deadline = self.now() + timeout
        while True:
            heard = first_audible(self.segments, since, self.audible_threshold)
            now = self.now()
            if heard is not None and heard <= now:
                return heard
            if heard is None and self.closed_at is not None:
                raise CallEnded("the stream closed before any agent audio was heard")
            if now >= deadline:
                raise TimeoutError(f"no agent audio heard within {timeout:.2f} s")
            wake = deadline if heard is None else min(heard, deadline)
            await self._wait_change(wake - now)

    def agent_silent_for(self, ms: float) -> bool:
        """True when no agent audio has been heard during the last `ms` milliseconds."""
        last = last_audible(self.segments, self.now(), self.audible_threshold)
        return last is None or self.now() - last >= ms / 1000

    async def wait_until_agent_silent(self, ms: float, timeout: float) -> float | None:  # noqa: ASYNC109
        """Wait until the agent has been silent for `ms`; returns when its audio last stopped
        (None if it never spoke)."""
        deadline = self.now() + timeout
        while True:
            now = self.now()
            last = last_audible(self.segments, now, self.audible_threshold)
            if last is None or now - last >= ms / 1000:
                return last
            if now >= deadline:
                raise TimeoutError(f"the agent did not fall silent within {timeout:.2f} s")
            await self._wait_change(min(last + ms / 1000, deadline) - now)

    def turns(self) -> list[Turn]:
        """Each completed caller utterance with the agent's answer and its latency."""
        return turns(self.utterances, self.segments, self.audible_threshold)

    def playout_gaps(self, min_gap: float = 0.001) -> list[Gap]:
        """Underruns: silences longer than `min_gap` s inside one agent answer."""
        return playout_gaps(self.segments, self.utterances, self.clears, min_gap)

    def agent_track(self) -> Pcm16:
        """The agent audio heard, aligned to the call's timeline (t=0 at `start`)."""
        return agent_track(self.segments)

    def caller_track(self) -> Pcm16:
        """The caller audio sent, aligned to the call's timeline (chunk n: (n-1)*20 to n*20 ms)."""
        silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        frames = [silence if frame is None else frame for frame in self._caller_frames]
        return np.concatenate(frames) if frames else np.zeros(0, dtype=np.int16)

    def write_wav(self, path: Path | str) -> None:
        """Stereo WAV of the whole call: caller on the left, agent on the right."""
        write_stereo_wav(Path(path), self.caller_track(), self.agent_track())

    # --- tasks -----------------------------------------------------------------------------

    async def _stream_caller_audio(self) -> None:
        """One media message every 20 ms, scheduled from `start` so that lateness never adds up."""
        assert self._loop is not None
        chunk = 0
        while self.closed_at is None:
            chunk += 1
            delay = self._t0 + chunk * FRAME_SECONDS - self._loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            frame = self._caller.next_frame(self.now())
            self._caller_frames.append(frame)
            payload = _SILENCE if frame is None else encode_mulaw(frame)
            timestamp = (chunk - 1) * 20
            await self._send(inbound_media_json, self.stream_sid, chunk, timestamp, payload)

    async def _receive(self) -> None:
        assert self._ws is not None
        with contextlib.suppress(ConnectionClosed):
            async for raw in self._ws:
                self._handle(raw)
        if self.closed_at is None:
            self._closed(by_server=True)

    @property
    def close_code(self) -> int | None:
        """The WebSocket close code the server sent (1008: relay refused), once closed."""
        if self._ws is None or self._ws.protocol.close_rcvd is None:
            return None
        return self._ws.protocol.close_rcvd.code

    def _handle(self, raw: str | bytes) -> None:
        now = self.now()
        if isinstance(raw, bytes):
            self._error("binary frame received: Twilio only reads JSON text frames")
            return
        try:
            message = parse_outbound(raw)
        except MediaStreamError as exc:
            self._error(f"unreadable message from the server: {exc}")
            return
        if message.stream_sid != self.stream_sid:
            self._error(f"message for stream {message.stream_sid!r}, not {self.stream_sid!r}")
            return
        if isinstance(message, OutboundMedia):
            self._playout.push(now, decode_mulaw(message.payload))
        elif isinstance(message, OutboundMark):
            self._playout.mark(now, message.name)
        elif isinstance(message, OutboundClear):
            self.clears.append(now)
            for pending in self._playout.clear(now):
                self._echo(pending.name, pending.received_at, cleared=True)
        self._notify()

    async def _echo_due_marks(self) -> None:
        while self.closed_at is None:
            for pending in self._playout.pop_due_marks(self.now()):
                self._echo(pending.name, pending.received_at, cleared=False)
            due = self._playout.next_mark_due()
            await self._wait_change(None if due is None else max(0.0, due - self.now()))

    def _echo(self, name: str, received_at: float, *, cleared: bool) -> None:
        self.marks.append(MarkRecord(name, received_at, self.now(), cleared))
        task = asyncio.create_task(self._guard(self._send(mark_echo_json, self.stream_sid, name)))
        self._tasks.append(task)
        task.add_done_callback(self._forget)

    # --- plumbing ----------------------------------------------------------------------------

    async def _send(
        self, build: Callable[Concatenate[int, _P], str], *args: _P.args, **kwargs: _P.kwargs
    ) -> None:
        """Send `build(sequence_number, ...)`; numbers follow the order messages go out."""
        assert self._ws is not None
        async with self._send_lock:
            self._sequence += 1
            await self._ws.send(build(self._sequence, *args, **kwargs))

    async def _guard(self, work: Awaitable[None]) -> None:
        try:
            await work
        except ConnectionClosed:
            if self.closed_at is None:
                self._closed(by_server=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("simulated Twilio call %s failed", self.call_sid)
            self._failure = exc
            self._closed(by_server=False)

    async def _stop_tasks(self) -> None:
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    def _forget(self, task: asyncio.Task[None]) -> None:
        with contextlib.suppress(ValueError):
            self._tasks.remove(task)

    def _closed(self, *, by_server: bool) -> None:
        if self.closed_at is None:
            self.closed_at = self.now()
            self.closed_by_server = by_server
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_change(self, seconds: float | None) -> None:
        """Sleep until something changes (a message, a close) or `seconds` pass."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), seconds)

    def _require_open(self) -> None:
        if self._ws is None or self.closed_at is not None:
            raise CallEnded("the call is not connected")

    def _error(self, message: str) -> None:
        logger.warning("simulated Twilio call %s: %s", self.call_sid, message)
        self.errors.append(message)
