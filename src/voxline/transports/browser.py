"""The runtime's transport over a browser session WebSocket: PCM16 binary frames and JSON
events (docs/browser-protocol.md).

The client echoes each `mark` when its playback reaches it and, on `clear`, drops queued
audio and echoes every pending mark at once, exactly as Twilio does; that is how barge-in
keeps only the words the caller heard. Bad client input is answered with an `error` event
and otherwise ignored: it never ends the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from voxline.audio.frames import pcm16_to_bytes
from voxline.audio.pcm import Pcm16
from voxline.runtime.events import CallEvent
from voxline.runtime.transport import (
    AudioIn,
    HangupIn,
    InboundEvent,
    InterruptIn,
    MarkPlayed,
    TextIn,
    TransferUnsupported,
)
from voxline.transports.browser_protocol import (
    AudioMessage,
    BrowserProtocolError,
    ClientMessage,
    EndMessage,
    InterruptMessage,
    MarkMessage,
    StartMessage,
    TextMessage,
    decode_audio_frame,
    decode_audio_message,
    event_message,
    parse_client_text,
    server_message,
)

logger = logging.getLogger(__name__)

_MAX_BAD_MESSAGES_LOGGED = 5


class ClientGone(Exception):
    """The client disconnected."""


class BrowserChannel:
    """One accepted browser WebSocket: sends serialized, receives parsed.

    Sends never raise: once the socket is gone they do nothing (`receive` reports it).
    """

    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket
        self._lock = asyncio.Lock()
        self.closed = False
        self._bad_messages = 0

    async def send_text(self, text: str) -> None:
        await self._send({"type": "websocket.send", "text": text})

    async def send_bytes(self, data: bytes) -> None:
        await self._send({"type": "websocket.send", "bytes": data})

    async def send_event(self, type_: str, **data: Any) -> None:
        await self.send_text(server_message(type_, **data))

    async def send_error(self, message: str) -> None:
        await self.send_event("error", message=message)

    async def receive(self) -> ClientMessage | Pcm16:
        """The next valid message (binary audio as samples). Invalid ones are answered
        with an `error` event and skipped. Raises `ClientGone`."""
        while True:
            try:
                frame = await self._ws.receive()
            except (WebSocketDisconnect, RuntimeError):
                frame = {"type": "websocket.disconnect"}
            if frame["type"] == "websocket.disconnect":
                self.closed = True
                raise ClientGone
            try:
                if frame.get("bytes") is not None:
                    return decode_audio_frame(frame["bytes"])
                return parse_client_text(frame.get("text") or "")
            except BrowserProtocolError as exc:
                await self.reject(str(exc))

    async def reject(self, message: str) -> None:
        """Tell the client a message of theirs was refused (and log the first few)."""
        self._bad_messages += 1
        if self._bad_messages <= _MAX_BAD_MESSAGES_LOGGED:
            logger.info("browser client message refused: %s", message)
        await self.send_error(message)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        if self._ws.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
                await self._ws.close(code=code, reason=reason)

    async def _send(self, message: dict[str, Any]) -> None:
        # One writer at a time: the playout and the event journal send concurrently.
        async with self._lock:
            if self.closed:
                return
            try:
                await self._ws.send(message)
            except (WebSocketDisconnect, RuntimeError, OSError):
                self.closed = True


async def receive_start(channel: BrowserChannel) -> StartMessage:
    """Wait for the client's `start`, answering anything else with an `error` event.
    Raises `ClientGone`."""
    while True:
        message = await channel.receive()
        if isinstance(message, StartMessage):
            return message
        await channel.reject("send a start message first")


class BrowserTransport:
    """One browser session after its `start`: audio both ways at `sample_rate`, events out.

    There is no phone line: `transfer` is unsupported, and `hang_up` only stops reading the
    client (whoever runs the session closes the socket once its last events are sent).
    """

    def __init__(self, channel: BrowserChannel, sample_rate: int) -> None:
        self._channel = channel
        self.input_rate = sample_rate
        self.output_rate = sample_rate
        self._hung_up = False

    async def events(self) -> AsyncIterator[InboundEvent]:
        while not self._hung_up:
            try:
                message = await self._channel.receive()
            except ClientGone:
                yield HangupIn("disconnected")
                return
            if isinstance(message, AudioMessage):
                try:
                    yield AudioIn(decode_audio_message(message))
                except BrowserProtocolError as exc:
                    await self._channel.reject(str(exc))
            elif isinstance(message, TextMessage):
                yield TextIn(message.text)
            elif isinstance(message, MarkMessage):
                yield MarkPlayed(message.name)
            elif isinstance(message, InterruptMessage):
                yield InterruptIn()
            elif isinstance(message, EndMessage):
                yield HangupIn("client_end")
                return
            elif isinstance(message, StartMessage):
                await self._channel.reject("the session has already started")
            else:
                yield AudioIn(message)
        yield HangupIn("agent_hangup")

    async def send_audio(self, pcm: Pcm16) -> None:
        await self._channel.send_bytes(pcm16_to_bytes(pcm))

    async def send_mark(self, name: str) -> None:
        await self._channel.send_event("mark", name=name)

    async def clear(self) -> None:
        await self._channel.send_event("clear")

    async def emit(self, event: CallEvent) -> None:
        await self._channel.send_text(event_message(event))

    async def hang_up(self) -> None:
        self._hung_up = True

    async def transfer(self, number: str) -> None:
        raise TransferUnsupported("a browser session has no phone line to transfer")
