"""Cartesia streaming text-to-speech over ONE WebSocket per call (wss /tts/websocket).

Wire protocol (docs.cartesia.ai: TTS WebSocket, contexts, context flushing): the key and API
version go in the `X-API-Key` and `Cartesia-Version` headers. A generation request carries
model_id, transcript, voice, language, context_id, output_format and `continue`; requests
sharing a context_id continue one utterance (prosody flows across them) and their
transcripts are concatenated verbatim. `flush: true` on an empty continuing input makes the
buffered text speak now and is answered by `flush_done`; `continue: false` ends a context,
answered by `done`. `{"context_id", "cancel": true}` cancels one. The server sends `chunk`
(base64 audio in `data`), `flush_done`, `done`, `timestamps` and `error`, each tagged with
its context_id, so many contexts share the socket.

How that maps onto TtsSession (ContinuingTtsSession):
- `synthesize(text)` is a one-off context (`continue: false`), complete at `done`.
- `synthesize(text, context=key)`: the clause is sent with `continue: true` then flushed, and
  is complete at `flush_done`; the next clause with the same key continues that context.
  `end_context(key)` sends the context's last (empty) input.
- Stopping a synthesis early (barge-in) sends `cancel` for its context without waiting.
- Cartesia expires a context 1 s after its last audio went out; a clause arriving later than
  `_CONTEXT_IDLE_S` after the previous one's audio opens a fresh context instead.
- The socket opens in `open()`; if it has closed by the next clause, that clause reconnects.

Not confirmed from the docs: whether audio of a cancelled context can still arrive (it is
dropped either way) and the error frame's exact fields across API versions (`error`,
`message` and `title` are all read).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from voxline.agent_spec import CartesiaTts
from voxline.audio.pcm import Pcm16
from voxline.providers.base import ProviderError
from voxline.providers.ws import (
    Background,
    PcmDecoder,
    close_quietly,
    closed_reason,
    connect,
    decode_base64,
    dump_json,
    parse_json,
    ws_url,
)

logger = logging.getLogger(__name__)

VENDOR = "Cartesia"
SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
# Half of Cartesia's 1 s context expiry: the rest covers network delay and clock skew.
_CONTEXT_IDLE_S = 0.5

Connector = Callable[[], Awaitable[ClientConnection]]
_Item = dict[str, Any] | ProviderError


class CartesiaTextToSpeech:
    """TextToSpeech on Cartesia's WebSocket API: each call opens one socket in `open()`."""

    name = "cartesia"
    sample_rate = 16000
    sample_rates = SAMPLE_RATES

    def __init__(self, spec: CartesiaTts, api_key: str | None, *, language: str) -> None:
        self.spec = spec
        self.language = (spec.language or language).split("-")[0].lower()
        self._api_key = api_key

    async def open(self, sample_rate: int | None = None) -> CartesiaTtsSession:
        """A connected session producing PCM16 at `sample_rate` (default 16 kHz)."""
        rate = self.sample_rate if sample_rate is None else sample_rate
        if rate not in self.sample_rates:
            raise ValueError(f"Cartesia sessions produce {self.sample_rates} Hz, not {rate}")
        session = CartesiaTtsSession(
            self._connector(),
            self.request_fields(rate),
            sample_rate=rate,
            response_timeout_s=self.spec.response_timeout_ms / 1000,
        )
        await session.start()
        return session

    def request_fields(self, sample_rate: int) -> dict[str, Any]:
        """The fields every generation request of a session carries besides its text."""
        return {
            "model_id": self.spec.model,
            "voice": {"mode": "id", "id": self.spec.voice_id},
            "language": self.language,
            "output_format": {
                "container": "raw",
                "encoding": "pcm_s16le",
                "sample_rate": sample_rate,
            },
        }

    def _connector(self) -> Connector:
        headers = {"Cartesia-Version": self.spec.cartesia_version}
        if self._api_key:
            headers["X-API-Key"] = self._api_key
        return functools.partial(
            connect,
            ws_url(self.spec.base_url, "/tts/websocket", {}),
            headers,
            vendor=VENDOR,
            credential=self.spec.credential_name(),
            timeout_s=self.spec.connect_timeout_ms / 1000,
        )


@dataclass(slots=True)
class _Context:
    """A caller's context key bound to one Cartesia context on one socket."""

    id: str
    ws: ClientConnection
    last_heard: float
    clauses: int = 0
    ends_with_space: bool = True
    busy: bool = False


@dataclass(slots=True)
class _Route:
    ws: ClientConnection
    queue: asyncio.Queue[_Item]


class CartesiaTtsSession:
    """One call's synthesizer on one socket; syntheses of different contexts may run at the
    same time, the clauses of one context run one after another."""

    def __init__(
        self,
        connector: Connector,
        request_fields: dict[str, Any],
        *,
        sample_rate: int,
        response_timeout_s: float,
    ) -> None:
        self.sample_rate = sample_rate
        self._connector = connector
        self._fields = request_fields
        self._response_timeout_s = response_timeout_s
        self._ws: ClientConnection | None = None
        self._connecting = asyncio.Lock()
        self._readers: set[asyncio.Task[None]] = set()
        self._routes: dict[str, _Route] = {}
        self._contexts: dict[str, _Context] = {}
        self._background = Background()
        self._closed = False

    async def start(self) -> None:
        """Open the socket now, so the first clause does not wait for it."""
        await self._connection()

    async def synthesize(
        self, text: str, *, context: str | None = None
    ) -> AsyncGenerator[Pcm16, None]:
        """PCM16 of `text` as it arrives; with `context`, continuing that context's speech."""
        self._check_open()
        if not text.strip():
            return
        ws = await self._connection()
        if context is None:
            request = self._request(uuid.uuid4().hex, text, last=True)
            stream = self._stream(ws, request["context_id"], [request], until="done")
            async with contextlib.aclosing(stream):
                async for pcm in stream:
                    yield pcm
            return
        current = self._context(context, ws)
        if current.busy:
            raise ProviderError(f"a clause of context {context!r} is still being synthesized")
        piece = text
        if not (current.ends_with_space or text[0].isspace()):
            piece = " " + text  # transcripts of a context are concatenated verbatim
        requests = [self._request(current.id, piece), self._request(current.id, "", flush=True)]
        current.busy = True
        try:
            stream = self._stream(ws, current.id, requests, until="flush_done")
            async with contextlib.aclosing(stream):
                async for pcm in stream:
                    yield pcm
        except BaseException:
            if self._contexts.get(context) is current:
                del self._contexts[context]  # cancelled or failed: never continue it
            raise
        finally:
            current.busy = False
            current.clauses += 1
            current.ends_with_space = piece[-1].isspace()
            current.last_heard = asyncio.get_running_loop().time()

    async def end_context(self, context: str) -> None:
        """No more clauses for `context`: send its last (empty) input; idempotent."""
        current = self._contexts.pop(context, None)
        if current is None or current.ws is not self._ws or self._stale(current):
            return
        if current.ws.state is State.OPEN:
            try:
                await current.ws.send(dump_json(self._request(current.id, "", last=True)))
            except ConnectionClosed:
                logger.debug("the Cartesia socket closed before a context could be ended")

    async def aclose(self) -> None:
        """Close the socket; syntheses still running fail with ProviderError."""
        if self._closed:
            return
        self._closed = True
        for route in self._routes.values():
            route.queue.put_nowait(ProviderError("the Cartesia session was closed"))
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        if self._ws is not None:
            await close_quietly(self._ws)
        await self._background.aclose()

    # --- one synthesis -------------------------------------------------------------------

    async def _stream(
        self, ws: ClientConnection, context_id: str, requests: list[dict[str, Any]], until: str
    ) -> AsyncGenerator[Pcm16, None]:
        queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._routes[context_id] = _Route(ws, queue)
        decoder = PcmDecoder()
        finished = False
        try:
            try:
                for request in requests:
                    await ws.send(dump_json(request))
            except ConnectionClosed as exc:
                raise ProviderError(f"the Cartesia connection {closed_reason(ws)}") from exc
            while True:
                item = await self._next(queue)
                kind = item.get("type")
                if kind == "chunk":
                    pcm = decoder.decode(decode_base64(item.get("data"), VENDOR))
                    if pcm.size:
                        yield pcm
                elif kind == "error":
                    finished = True  # an error ends the context on Cartesia's side
                    raise ProviderError(f"Cartesia error: {_error_text(item)}")
                elif kind in (until, "done"):
                    finished = True
                    return
        finally:
            self._routes.pop(context_id, None)
            if not finished and ws.state is State.OPEN:
                self._background.spawn(_cancel(ws, context_id))

    async def _next(self, queue: asyncio.Queue[_Item]) -> dict[str, Any]:
        try:
            async with asyncio.timeout(self._response_timeout_s):
                item = await queue.get()
        except TimeoutError:
            raise ProviderError(
                f"Cartesia sent nothing for {self._response_timeout_s:g} s"
            ) from None
        if isinstance(item, ProviderError):
            raise item
        return item

    def _request(
        self, context_id: str, transcript: str, *, last: bool = False, flush: bool = False
    ) -> dict[str, Any]:
        request = {
            **self._fields,
            "transcript": transcript,
            "context_id": context_id,
            "continue": not last,
        }
        if flush:
            request["flush"] = True
        return request

    def _context(self, key: str, ws: ClientConnection) -> _Context:
        current = self._contexts.get(key)
        if current is None or current.ws is not ws or (not current.busy and self._stale(current)):
            current = _Context(uuid.uuid4().hex, ws, asyncio.get_running_loop().time())
            self._contexts[key] = current
        return current

    def _stale(self, current: _Context) -> bool:
        idle = asyncio.get_running_loop().time() - current.last_heard
        return current.clauses > 0 and idle > _CONTEXT_IDLE_S

    # --- the socket ----------------------------------------------------------------------

    async def _connection(self) -> ClientConnection:
        async with self._connecting:
            self._check_open()
            if self._ws is not None and self._ws.state is State.OPEN:
                return self._ws
            ws = await self._connector()
            self._ws = ws
            self._contexts.clear()  # contexts live on the socket that made them
            reader = asyncio.create_task(self._read(ws), name="cartesia-read")
            self._readers.add(reader)
            reader.add_done_callback(self._readers.discard)
            return ws

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                if isinstance(frame, str):
                    self._dispatch(frame)
        except ConnectionClosed:
            pass
        reason = closed_reason(ws)
        if not self._closed:
            logger.info("the Cartesia connection %s", reason)
        for route in list(self._routes.values()):
            if route.ws is ws:
                route.queue.put_nowait(ProviderError(f"the Cartesia connection {reason}"))

    def _dispatch(self, frame: str) -> None:
        try:
            message = parse_json(frame, VENDOR)
        except ProviderError as exc:
            logger.warning("ignoring a Cartesia message: %s", exc)
            return
        context_id = message.get("context_id")
        route = self._routes.get(context_id) if isinstance(context_id, str) else None
        if route is not None:
            route.queue.put_nowait(message)
        elif message.get("type") == "error" and context_id is None:
            text = f"Cartesia error: {_error_text(message)}"
            for other in self._routes.values():
                other.queue.put_nowait(ProviderError(text))
        # Anything else belongs to a context nobody waits for (cancelled, ended): dropped.

    def _check_open(self) -> None:
        if self._closed:
            raise ProviderError("the Cartesia session is closed")


async def _cancel(ws: ClientConnection, context_id: str) -> None:
    try:
        await ws.send(dump_json({"context_id": context_id, "cancel": True}))
    except ConnectionClosed:
        logger.debug("the Cartesia socket closed before a cancel could be sent")


def _error_text(message: dict[str, Any]) -> str:
    parts = [message.get(key) for key in ("title", "message", "error")]
    text = ": ".join(str(part) for part in parts if part)
    status = message.get("status_code")
    return f"{text} (status {status})" if status is not None else text or "unknown error"
