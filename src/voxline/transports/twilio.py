"""The runtime's transport over a Twilio Media Streams WebSocket (mu-law 8 kHz both ways)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from voxline.audio.mulaw import decode_mulaw, encode_mulaw
from voxline.audio.pcm import Pcm16
from voxline.runtime.events import CallEvent
from voxline.runtime.transport import (
    AudioIn,
    DtmfIn,
    HangupIn,
    InboundEvent,
    MarkPlayed,
    TransferUnsupported,
)
from voxline.telephony.twilio.media import (
    SAMPLE_RATE,
    DtmfMessage,
    MalformedMessage,
    MarkMessage,
    MediaMessage,
    MediaStreamError,
    StartMessage,
    StopMessage,
    clear_json,
    mark_json,
    media_json,
    parse_inbound,
)
from voxline.telephony.twilio.rest import TwilioApiError, TwilioRestClient, dial_twiml

logger = logging.getLogger(__name__)

_MAX_BAD_MESSAGES_LOGGED = 5


async def receive_text_frame(websocket: WebSocket) -> str:
    """The next frame's text. MalformedMessage for a binary frame (Twilio sends text only);
    WebSocketDisconnect once the socket closes."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text = message.get("text")
    if not isinstance(text, str):
        raise MalformedMessage("a binary frame (Twilio sends text frames only)")
    return text


class TwilioMediaTransport:
    """One call's media stream, after its `start` message has been read and accepted.

    Hanging up and transferring go through Twilio's REST API when credentials are configured;
    without them, hanging up closes the socket (Twilio then runs the TwiML after `<Connect>`,
    which is a `<Hangup/>`), and transfer is unsupported.
    """

    input_rate = SAMPLE_RATE
    output_rate = SAMPLE_RATE

    def __init__(
        self,
        websocket: WebSocket,
        start: StartMessage,
        rest: TwilioRestClient | None = None,
        caller_id: str | None = None,
    ) -> None:
        self._ws = websocket
        self._stream_sid = start.stream_sid
        self._call_sid = start.call_sid
        self._rest = rest
        self._caller_id = caller_id
        self._closed = False
        self._bad_messages = 0

    @property
    def call_sid(self) -> str:
        return self._call_sid

    async def events(self) -> AsyncIterator[InboundEvent]:
        while True:
            try:
                message = parse_inbound(await receive_text_frame(self._ws))
            except (WebSocketDisconnect, RuntimeError):
                self._closed = True
                yield HangupIn("disconnected")
                return
            except MediaStreamError as exc:
                self._note_bad_message(exc)
                continue
            if isinstance(message, MediaMessage):
                if message.track == "inbound":
                    yield AudioIn(decode_mulaw(message.payload), mulaw=message.payload)
            elif isinstance(message, MarkMessage):
                yield MarkPlayed(message.name)
            elif isinstance(message, DtmfMessage):
                yield DtmfIn(message.digit)
            elif isinstance(message, StopMessage):
                yield HangupIn("caller_hangup")
                return

    async def send_audio(self, pcm: Pcm16) -> None:
        await self._send(media_json(self._stream_sid, encode_mulaw(pcm)))

    async def send_mark(self, name: str) -> None:
        await self._send(mark_json(self._stream_sid, name))

    async def clear(self) -> None:
        await self._send(clear_json(self._stream_sid))

    async def emit(self, event: CallEvent) -> None:
        """Phone callers see no events."""

    async def hang_up(self) -> None:
        if self._rest is not None:
            try:
                await self._rest.hang_up(self._call_sid)
            except (TwilioApiError, OSError) as exc:
                logger.warning(
                    "twilio hang-up of %s failed (%s); closing the stream", self._call_sid, exc
                )
        await self.close()

    async def transfer(self, number: str) -> None:
        if self._rest is None:
            raise TransferUnsupported("transferring needs Twilio REST credentials on the server")
        await self._rest.redirect(self._call_sid, dial_twiml(number, self._caller_id))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._ws.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
                await self._ws.close(code=1000)

    async def _send(self, text: str) -> None:
        if self._closed:
            return
        try:
            await self._ws.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError):
            # The socket is gone; `events()` reports the hang-up, nothing more to do here.
            self._closed = True

    def _note_bad_message(self, exc: MediaStreamError) -> None:
        self._bad_messages += 1
        if self._bad_messages <= _MAX_BAD_MESSAGES_LOGGED:
            logger.warning("ignoring a bad media-stream message on %s: %s", self._stream_sid, exc)
        elif self._bad_messages == _MAX_BAD_MESSAGES_LOGGED + 1:
            logger.warning(
                "more bad media-stream messages on %s: no longer logged", self._stream_sid
            )
