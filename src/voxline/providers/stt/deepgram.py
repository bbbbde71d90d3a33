"""Deepgram live speech-to-text: one WebSocket per call (wss /v1/listen), opened in `open()`.

Wire protocol (developers.deepgram.com: live streaming, Finalize, KeepAlive, CloseStream):
binary frames carry linear16 audio at the session's rate (or, for a phone call opened with
`open_mulaw`, mu-law at 8 kHz exactly as the line sent it), text frames carry JSON control
messages. `Results` hold `channel.alternatives[0].transcript` with `is_final` (that stretch
of audio will not change) and `from_finalize` (the answer to a Finalize). `SpeechStarted`
(vad_events) and `UtteranceEnd` (utterance_end_ms) mark voice activity. Deepgram closes a
socket that gets neither audio nor KeepAlive for 10 s, and reports errors as close frames.

How that maps onto SttSession:
- `finalize` sends Finalize and returns the segment's text: every final result since the
  previous finalize, up to the one marked from_finalize. Deepgram says that answer comes
  "typically" when audio is buffered, not always, so the wait is bounded
  (`finalize_timeout_ms`); when it runs out the finals so far plus the latest interim are used.
- `interim()` yields the segment's running text (finals so far + latest interim) for each
  result; `is_final` is true when none of that text can change any more.
- `events()` (SpeechEventSource) yields SpeechStarted / UtteranceEnd.
- An unexpected close gets one reconnection attempt (at most three per call); audio in
  flight on the lost socket is lost, the segment's finals so far are kept.

Why one module of ~420 lines: one vendor's wire protocol, kept whole (as every vendor is).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, TypeVar

import numpy as np
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from voxline.agent_spec import DeepgramStt
from voxline.audio.mulaw import decode_mulaw, encode_mulaw
from voxline.audio.pcm import Pcm16
from voxline.providers.base import (
    ProviderError,
    SpeechEvent,
    Transcript,
)
from voxline.providers.ws import (
    close_quietly,
    closed_reason,
    connect,
    dump_json,
    parse_json,
    ws_url,
)

logger = logging.getLogger(__name__)

VENDOR = "Deepgram"
SAMPLE_RATES = (8000, 16000, 24000, 32000, 44100, 48000)
MULAW_RATE = 8000
_MAX_RECONNECTS = 3
_FEED_LIMIT = 64

T = TypeVar("T")
Connector = Callable[[], Awaitable[ClientConnection]]


class DeepgramSpeechToText:
    """SpeechToText on Deepgram's live API. Stateless: every call opens its own socket."""

    name = "deepgram"
    sample_rate = 16000
    sample_rates = SAMPLE_RATES

    def __init__(self, spec: DeepgramStt, api_key: str | None, *, language: str) -> None:
        self.spec = spec
        self.language = spec.language or language
        self._api_key = api_key

    async def open(self, sample_rate: int | None = None) -> DeepgramSttSession:
        """A connected session taking PCM16 at `sample_rate` (default 16 kHz)."""
        rate = self.sample_rate if sample_rate is None else sample_rate
        if rate not in self.sample_rates:
            raise ValueError(f"Deepgram sessions take {self.sample_rates} Hz audio, not {rate}")
        session = DeepgramSttSession(self._connector(rate), self.spec, rate)
        await session.start()
        return session

    async def open_mulaw(self) -> DeepgramSttSession:
        """A connected session taking phone audio as is (MulawInputStt): mu-law at 8 kHz
        through `send_mulaw`, no decoding or resampling on our side."""
        session = DeepgramSttSession(
            self._connector(MULAW_RATE, "mulaw"), self.spec, MULAW_RATE, mulaw=True
        )
        await session.start()
        return session

    def query(self, sample_rate: int, encoding: str = "linear16") -> dict[str, str | int | bool]:
        """The documented /v1/listen query parameters for a session at `sample_rate` taking
        `encoding` ('linear16' or 'mulaw')."""
        spec = self.spec
        params: dict[str, str | int | bool] = {
            "model": spec.model,
            "language": self.language,
            "encoding": encoding,
            "sample_rate": sample_rate,
            "channels": 1,
            "interim_results": spec.interim_results,
            "endpointing": spec.endpointing_ms,
            "vad_events": True,
            "smart_format": spec.smart_format,
            "punctuate": spec.punctuate,
        }
        if spec.interim_results:  # Deepgram derives utterance ends from interim results
            params["utterance_end_ms"] = spec.utterance_end_ms
        return params

    def _connector(self, sample_rate: int, encoding: str = "linear16") -> Connector:
        headers = {"Authorization": f"Token {self._api_key}"} if self._api_key else {}
        return functools.partial(
            connect,
            ws_url(self.spec.base_url, "/v1/listen", self.query(sample_rate, encoding)),
            headers,
            vendor=VENDOR,
            credential=self.spec.credential_name(),
            timeout_s=self.spec.connect_timeout_ms / 1000,
        )


class DeepgramSttSession:
    """One call's live recognizer. `send` streams PCM16 and `send_mulaw` mu-law bytes (each
    converted if the socket was opened for the other encoding), `finalize` ends a segment,
    `interim` and `events` are single-consumer feeds; a KeepAlive goes out whenever audio
    pauses."""

    def __init__(
        self, connector: Connector, spec: DeepgramStt, sample_rate: int, *, mulaw: bool = False
    ) -> None:
        if mulaw and sample_rate != MULAW_RATE:
            raise ValueError(f"mu-law sessions run at {MULAW_RATE} Hz, not {sample_rate}")
        self.sample_rate = sample_rate
        self.mulaw = mulaw
        self._connector = connector
        self._keepalive_s = spec.keepalive_interval_ms / 1000
        self._finalize_timeout_s = spec.finalize_timeout_ms / 1000
        self._ws: ClientConnection | None = None
        self._generation = 0
        self._changed = asyncio.Condition()
        self._finals: list[str] = []
        self._interim = ""
        self._unfinalized_audio = False
        self._finalize_waiter: asyncio.Future[None] | None = None
        self._transcripts = _Feed[Transcript]()
        self._events = _Feed[SpeechEvent]()
        self._failure: str | None = None
        self._closed = False
        self._reconnects = 0
        self._last_activity = 0.0
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Connect, then start reading results and keeping the socket alive."""
        self._ws = await self._connector()
        self._last_activity = asyncio.get_running_loop().time()
        self._tasks = [
            asyncio.create_task(self._read(), name="deepgram-read"),
            asyncio.create_task(self._keep_alive(), name="deepgram-keepalive"),
        ]

    async def send(self, pcm: Pcm16) -> None:
        """Stream mono int16 PCM at `sample_rate`."""
        self._check_usable()
        if pcm.dtype != np.int16 or pcm.ndim != 1:
            raise ValueError(f"expected mono int16 PCM, got {pcm.dtype} of shape {pcm.shape}")
        if pcm.size:
            await self._send_audio(
                encode_mulaw(pcm) if self.mulaw else pcm.astype("<i2", copy=False).tobytes()
            )

    async def send_mulaw(self, payload: bytes) -> None:
        """Stream G.711 mu-law bytes at 8 kHz (MulawSttSession)."""
        self._check_usable()
        if self.sample_rate != MULAW_RATE:
            raise ValueError(f"this session takes {self.sample_rate} Hz audio, not 8 kHz mu-law")
        if payload:
            await self._send_audio(
                payload if self.mulaw else decode_mulaw(payload).astype("<i2").tobytes()
            )

    async def _send_audio(self, frame: bytes) -> None:
        while True:
            ws, generation = self._connection(), self._generation
            try:
                await ws.send(frame)
                break
            except ConnectionClosed:
                await self._wait_for_reconnect(generation)
        self._last_activity = asyncio.get_running_loop().time()
        self._unfinalized_audio = True

    async def finalize(self) -> str:
        """The final text of the audio sent since the last finalize ("" if none)."""
        self._check_usable()
        if self._unfinalized_audio:
            self._unfinalized_audio = False
            waiter = asyncio.get_running_loop().create_future()
            self._finalize_waiter = waiter
            try:
                await self._send_control({"type": "Finalize"})
                try:
                    async with asyncio.timeout(self._finalize_timeout_s):
                        await waiter
                except TimeoutError:
                    logger.info(
                        "Deepgram sent no finalize result within %.2f s; using what it sent",
                        self._finalize_timeout_s,
                    )
                    self._finals.append(self._interim)
            finally:
                self._finalize_waiter = None
            self._check_usable()
        text = " ".join(part for part in self._finals if part)
        self._finals, self._interim = [], ""
        return text

    async def peek(self) -> str:
        """The words of the segment so far: its final results and the latest interim."""
        return " ".join([*self._finals, self._interim]).strip()

    def interim(self) -> AsyncIterator[Transcript]:
        """The current segment's running text after each result (one consumer); ends when
        the session closes, raises ProviderError if the connection is lost for good."""
        return self._transcripts.stream()

    def events(self) -> AsyncIterator[SpeechEvent]:
        """SpeechStarted / UtteranceEnd as they arrive (one consumer), like `interim()`."""
        return self._events.stream()

    async def aclose(self) -> None:
        """Send CloseStream and close the socket; idempotent."""
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(dump_json({"type": "CloseStream"}))
            await close_quietly(ws)
        self._end_feeds()
        await self._notify()

    # --- reading -------------------------------------------------------------------------

    async def _read(self) -> None:
        while True:
            ws = self._connection()
            try:
                async for frame in ws:
                    if isinstance(frame, str):
                        self._handle(frame)
            except ConnectionClosed:
                pass
            if not await self._reconnect(closed_reason(ws)):
                return

    def _handle(self, frame: str) -> None:
        try:
            message = parse_json(frame, VENDOR)
        except ProviderError as exc:
            logger.warning("ignoring a Deepgram message: %s", exc)
            return
        kind = message.get("type")
        if kind == "Results":
            self._on_results(message)
        elif kind == "SpeechStarted":
            self._events.put(SpeechEvent("speech_started", _seconds(message.get("timestamp"))))
        elif kind == "UtteranceEnd":
            self._events.put(SpeechEvent("utterance_end", _seconds(message.get("last_word_end"))))

    def _on_results(self, message: dict[str, Any]) -> None:
        text = _transcript(message)
        is_final = message.get("is_final") is True
        if is_final:
            self._finals.append(text)
            self._interim = ""
        else:
            self._interim = text
        running = " ".join(part for part in (*self._finals, self._interim) if part)
        self._transcripts.put(Transcript(running, is_final))
        waiter = self._finalize_waiter
        if message.get("from_finalize") is True and waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _reconnect(self, reason: str) -> bool:
        """After an unexpected close: one attempt at a new socket. False: the session is over."""
        if self._closed:
            return False
        if self._reconnects >= _MAX_RECONNECTS:
            await self._fail(f"the Deepgram connection {reason}, {_MAX_RECONNECTS} times")
            return False
        self._reconnects += 1
        logger.warning("the Deepgram connection %s; reconnecting", reason)
        try:
            ws = await self._connector()
        except ProviderError as exc:
            await self._fail(f"the Deepgram connection {reason} and reconnecting failed: {exc}")
            return False
        if self._closed:
            await close_quietly(ws)
            return False
        self._ws = ws
        self._generation += 1
        self._interim = ""
        # Audio that was in flight died with the old socket: a pending finalize has its answer.
        self._unfinalized_audio = False
        self._wake_finalize()
        await self._notify()
        return True

    async def _fail(self, message: str) -> None:
        logger.warning("%s", message)
        self._failure = message
        self._end_feeds(message)
        self._wake_finalize()
        await self._notify()

    # --- writing -------------------------------------------------------------------------

    async def _keep_alive(self) -> None:
        loop = asyncio.get_running_loop()
        while self._failure is None:
            wait = self._last_activity + self._keepalive_s - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            await self._send_control({"type": "KeepAlive"})
            self._last_activity = loop.time()

    async def _send_control(self, message: dict[str, str]) -> None:
        """Send a control message; a closed socket is left to the reader, which reconnects."""
        try:
            await self._connection().send(dump_json(message))
        except ConnectionClosed:
            logger.debug("Deepgram %s not sent: the socket is closed", message["type"])

    async def _wait_for_reconnect(self, generation: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._generation != generation or self._unusable())
        self._check_usable()

    # --- state ---------------------------------------------------------------------------

    def _connection(self) -> ClientConnection:
        if self._ws is None:
            raise ProviderError("the Deepgram session was never started")
        return self._ws

    def _unusable(self) -> bool:
        return self._closed or self._failure is not None

    def _check_usable(self) -> None:
        if self._closed:
            raise ProviderError("the Deepgram session is closed")
        if self._failure is not None:
            raise ProviderError(self._failure)

    def _wake_finalize(self) -> None:
        waiter = self._finalize_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _end_feeds(self, failure: str | None = None) -> None:
        self._transcripts.close(None if failure is None else ProviderError(failure))
        self._events.close(None if failure is None else ProviderError(failure))

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()


class _Feed(Generic[T]):
    """Items for one consumer; past `limit` unread items the oldest are dropped, so a feed
    nobody reads costs nothing. Ends when closed, raising the error it was closed with."""

    def __init__(self, limit: int = _FEED_LIMIT) -> None:
        self._items: deque[T] = deque(maxlen=limit)
        self._ready = asyncio.Event()
        self._ended = False
        self._error: Exception | None = None

    def put(self, item: T) -> None:
        if not self._ended:
            self._items.append(item)
            self._ready.set()

    def close(self, error: Exception | None = None) -> None:
        if not self._ended:
            self._ended = True
            self._error = error
            self._ready.set()

    async def stream(self) -> AsyncIterator[T]:
        while True:
            while self._items:
                yield self._items.popleft()
            if self._ended:
                if self._error is not None:
                    raise self._error
                return
            self._ready.clear()
            await self._ready.wait()


def _transcript(message: dict[str, Any]) -> str:
    channel = message.get("channel")
    alternatives = channel.get("alternatives") if isinstance(channel, dict) else None
    if not isinstance(alternatives, list) or not alternatives:
        return ""
    first = alternatives[0]
    text = first.get("transcript") if isinstance(first, dict) else None
    return text.strip() if isinstance(text, str) else ""


def _seconds(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0
