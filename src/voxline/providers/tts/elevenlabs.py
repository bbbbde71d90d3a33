"""ElevenLabs streaming text-to-speech (wss /v1/text-to-speech/{voice_id}/stream-input).

Wire protocol (elevenlabs.io API reference, "WebSocket"): model_id, output_format (pcm_<rate>)
and inactivity_timeout go in the query, the key in the `xi-api-key` header. The first
message is `{"text": " ", "voice_settings": ...}`; text follows as `{"text": "... "}` and
`{"text": ""}` ends the input, which also makes the server speak whatever it still buffers.
The server answers with `{"audio": <base64>, "isFinal": ...}` messages and a last one with
`isFinal: true`, then closes the socket.

Because the empty text ends the connection, a connection carries one clause: a session
keeps the next connection open (handshake and first message done) before it is needed, the
first one from `open()`, so no clause waits for a handshake. Each clause is therefore
spoken on its own; unlike Cartesia, prosody does not continue across clauses. Stopping a
synthesis early closes its connection, which is how the protocol cancels.

Not confirmed from the docs: the shape of in-band errors (any message with an `error`, or a
`message` without audio, is treated as one) and whether a bad key is refused at the upgrade
or after it (both become a ProviderError). inactivity_timeout=180 is the documented maximum
as we read it; an idle spare that the server closed anyway is replaced when it is needed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from voxline.agent_spec import ElevenLabsTts
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

VENDOR = "ElevenLabs"
SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100)
_INACTIVITY_TIMEOUT_S = 180

Connector = Callable[[], Awaitable[ClientConnection]]


class ElevenLabsTextToSpeech:
    """TextToSpeech on ElevenLabs' streaming-input WebSocket, one connection per clause."""

    name = "elevenlabs"
    sample_rate = 16000
    sample_rates = SAMPLE_RATES

    def __init__(self, spec: ElevenLabsTts, api_key: str | None) -> None:
        self.spec = spec
        self._api_key = api_key

    async def open(self, sample_rate: int | None = None) -> ElevenLabsTtsSession:
        """A session producing PCM16 at `sample_rate` (default 16 kHz), its first connection
        already open."""
        rate = self.sample_rate if sample_rate is None else sample_rate
        if rate not in self.sample_rates:
            raise ValueError(f"ElevenLabs sessions produce {self.sample_rates} Hz, not {rate}")
        session = ElevenLabsTtsSession(
            functools.partial(self._open_stream, rate),
            sample_rate=rate,
            response_timeout_s=self.spec.response_timeout_ms / 1000,
        )
        await session.start()
        return session

    def query(self, sample_rate: int) -> dict[str, str | int]:
        """The stream-input query parameters for a session at `sample_rate`."""
        params: dict[str, str | int] = {
            "model_id": self.spec.model,
            "output_format": f"pcm_{sample_rate}",
            "inactivity_timeout": _INACTIVITY_TIMEOUT_S,
        }
        if self.spec.language is not None:
            params["language_code"] = self.spec.language
        return params

    async def _open_stream(self, sample_rate: int) -> ClientConnection:
        """A connection ready for text: connected, and its first message sent."""
        spec = self.spec
        ws = await connect(
            ws_url(
                spec.base_url,
                f"/v1/text-to-speech/{spec.voice_id}/stream-input",
                self.query(sample_rate),
            ),
            {"xi-api-key": self._api_key} if self._api_key else {},
            vendor=VENDOR,
            credential=spec.credential_name(),
            timeout_s=spec.connect_timeout_ms / 1000,
        )
        settings = spec.voice_settings.model_dump(mode="json", by_alias=False)
        try:
            await ws.send(dump_json({"text": " ", "voice_settings": settings}))
        except ConnectionClosed as exc:
            raise ProviderError(f"the ElevenLabs connection {closed_reason(ws)}") from exc
        return ws


class ElevenLabsTtsSession:
    """One call's synthesizer: each clause on its own connection, the next one always
    opening in the background while the current clause streams."""

    def __init__(
        self, open_stream: Connector, *, sample_rate: int, response_timeout_s: float
    ) -> None:
        self.sample_rate = sample_rate
        self._open_stream = open_stream
        self._response_timeout_s = response_timeout_s
        self._spare: asyncio.Future[ClientConnection] | None = None
        self._background = Background()
        self._closed = False

    async def start(self) -> None:
        """Open the first connection now (a bad key or an unreachable server fails here)."""
        ws = await self._open_stream()
        self._spare = asyncio.get_running_loop().create_future()
        self._spare.set_result(ws)

    async def synthesize(self, text: str) -> AsyncGenerator[Pcm16, None]:
        """PCM16 of `text` as it arrives; nothing for blank text."""
        self._check_open()
        if not text.strip():
            return
        ws = await self._take()
        try:
            try:
                await ws.send(dump_json({"text": text.strip() + " "}))
                await ws.send(dump_json({"text": ""}))
            except ConnectionClosed as exc:
                raise ProviderError(f"the ElevenLabs connection {closed_reason(ws)}") from exc
            decoder = PcmDecoder()
            while True:
                message = await self._next(ws)
                audio = message.get("audio")
                if isinstance(audio, str) and audio:
                    pcm = decoder.decode(decode_base64(audio, VENDOR))
                    if pcm.size:
                        yield pcm
                if message.get("isFinal") is True:
                    return
        finally:
            # Done, failed or cancelled alike: this connection has served its clause.
            self._background.spawn(close_quietly(ws))

    async def aclose(self) -> None:
        """Close the spare connection; idempotent."""
        if self._closed:
            return
        self._closed = True
        spare, self._spare = self._spare, None
        if spare is not None:
            spare.cancel()
            await asyncio.wait([spare])
            if not spare.cancelled() and spare.exception() is None:
                await close_quietly(spare.result())
        await self._background.aclose()

    async def _take(self) -> ClientConnection:
        """The spare connection if it is still open, else a new one; then start the next."""
        spare, self._spare = self._spare, None
        ws: ClientConnection | None = None
        if spare is not None:
            try:
                ws = await spare
            except ProviderError as exc:
                logger.info("the spare ElevenLabs connection failed: %s", exc)
        if ws is not None and ws.state is not State.OPEN:
            ws = None
        if ws is None:
            ws = await self._open_stream()
        self._spare = asyncio.ensure_future(self._open_stream())
        self._spare.add_done_callback(_retrieve)
        return ws

    async def _next(self, ws: ClientConnection) -> dict[str, Any]:
        """The next JSON message of a clause; errors, silence and a lost socket raise."""
        while True:
            try:
                async with asyncio.timeout(self._response_timeout_s):
                    frame = await ws.recv()
            except TimeoutError:
                raise ProviderError(
                    f"ElevenLabs sent nothing for {self._response_timeout_s:g} s"
                ) from None
            except ConnectionClosed as exc:
                raise ProviderError(
                    f"the ElevenLabs connection {closed_reason(ws)} before the clause ended"
                ) from exc
            if isinstance(frame, bytes):
                continue
            message = parse_json(frame, VENDOR)
            if "error" in message or ("message" in message and "audio" not in message):
                raise ProviderError(f"ElevenLabs error: {_error_text(message)}")
            return message

    def _check_open(self) -> None:
        if self._closed:
            raise ProviderError("the ElevenLabs session is closed")


def _retrieve(spare: asyncio.Future[ClientConnection]) -> None:
    """Mark a spare's failure as seen: it is reported when (if ever) the spare is taken."""
    if not spare.cancelled():
        spare.exception()


def _error_text(message: dict[str, Any]) -> str:
    parts = [message.get(key) for key in ("error", "message")]
    text = ": ".join(str(part) for part in parts if part)
    code = message.get("code")
    return f"{text} (code {code})" if code is not None else text or "unknown error"
