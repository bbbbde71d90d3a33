"""A fake ElevenLabs streaming-input TTS server on 127.0.0.1, random port.

It follows the documented protocol of WebSocket /v1/text-to-speech/{voice_id}/stream-input:
`xi-api-key` checked on the upgrade (HTTP 401 otherwise), model_id and output_format
(`pcm_<rate>`) in the query; a first message `{"text": " ", "voice_settings": ...}`, then text
messages buffered until `{"text": ""}`, which speaks the buffer as `{"audio": <base64>,
"isFinal": false}` messages, then `{"isFinal": true}`, then closes the connection. It speaks
with the fake voice of `tests.fakes.cartesia_api` (`spoken_text` reads it back).

Slow and failing behaviours: `first_chunk_delay_s`, `pause_after_chunks` (audio held after
that many chunks until `resume()`), `error_after_chunks` (an in-band error message, then a
1008 close) and `drop_after_chunks` (the first connection dies without a close frame).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from tests.fakes.cartesia_api import speak

_WAIT_LIMIT_S = 5.0
_CHARS_PER_CHUNK = 4


@dataclass
class ConnectionLog:
    path: str
    query: dict[str, str]
    headers: Headers
    messages: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False


class FakeElevenLabs:
    """Run with `async with FakeElevenLabs() as fake:`; point the spec's base_url at
    `fake.base_url`."""

    def __init__(
        self,
        api_key: str = "xi-test-key",
        *,
        first_chunk_delay_s: float = 0.0,
        pause_after_chunks: int | None = None,
        error_after_chunks: int | None = None,
        drop_after_chunks: int | None = None,
    ) -> None:
        self.api_key = api_key
        self.first_chunk_delay_s = first_chunk_delay_s
        self.pause_after_chunks = pause_after_chunks
        self.error_after_chunks = error_after_chunks
        self.drop_after_chunks = drop_after_chunks
        self.connections: list[ConnectionLog] = []
        self._live: set[ServerConnection] = set()
        self._resumed = asyncio.Event()
        self._changed = asyncio.Condition()
        self._server: Server | None = None
        self.base_url = ""

    @property
    def spoken(self) -> list[str]:
        """The text each connection was given to speak (its messages after the first)."""
        return ["".join(m["text"] for m in log.messages[1:]) for log in self.connections]

    async def __aenter__(self) -> FakeElevenLabs:
        self._server = await serve(
            self._serve, "127.0.0.1", 0, process_request=self._check, compression=None
        )
        port = self._server.sockets[0].getsockname()[1]
        self.base_url = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def close_idle(self) -> None:
        """Close every open connection, as the server does after its inactivity timeout."""
        for connection in list(self._live):
            await connection.close(1008, "inactivity timeout")

    def resume(self) -> None:
        """Let connections paused by `pause_after_chunks` go on."""
        self._resumed.set()

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait (a few seconds at most) until `condition()` holds after some client event."""
        async with asyncio.timeout(_WAIT_LIMIT_S), self._changed:
            await self._changed.wait_for(condition)

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path).path.split("/")
        if parts[:3] != ["", "v1", "text-to-speech"] or parts[4:] != ["stream-input"]:
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found")
        if request.headers.get("xi-api-key") != self.api_key:
            return connection.respond(HTTPStatus.UNAUTHORIZED, "Invalid API key")
        return None

    async def _serve(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        url = urlsplit(connection.request.path)
        log = ConnectionLog(url.path, dict(parse_qsl(url.query)), connection.request.headers)
        self.connections.append(log)
        self._live.add(connection)
        rate = int(log.query["output_format"].removeprefix("pcm_"))
        await self._notify()
        try:
            buffered = ""
            async for frame in connection:
                message = json.loads(frame)
                log.messages.append(message)
                await self._notify()
                if len(log.messages) == 1:
                    if message.get("text") != " ":
                        await connection.close(1008, "the first message must be a single space")
                        return
                    continue
                if message.get("text"):
                    buffered += message["text"]
                    continue
                await self._speak(connection, log, buffered, rate)
                return
        except ConnectionClosed:
            pass
        finally:
            self._live.discard(connection)
            log.closed = True
            await self._notify()

    async def _speak(
        self, connection: ServerConnection, log: ConnectionLog, text: str, rate: int
    ) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.first_chunk_delay_s):
                await connection.wait_closed()  # a client giving up ends the delay
        for index, start in enumerate(range(0, len(text), _CHARS_PER_CHUNK)):
            if log is self.connections[0] and index == self.drop_after_chunks:
                connection.transport.abort()
                return
            if index == self.error_after_chunks:
                error = {"message": "Quota exceeded", "error": "quota_exceeded", "code": 1008}
                await connection.send(json.dumps(error))
                await connection.close(1008, "quota exceeded")
                return
            if index == self.pause_after_chunks:
                await self._pause(connection)
            pcm = speak(text[start : start + _CHARS_PER_CHUNK], rate)
            audio = base64.b64encode(pcm.astype("<i2").tobytes()).decode()
            chunk = {"audio": audio, "isFinal": False, "normalizedAlignment": None}
            await connection.send(json.dumps(chunk))
        with contextlib.suppress(ConnectionClosed):
            await connection.send(json.dumps({"isFinal": True}))
            await connection.close()

    async def _pause(self, connection: ServerConnection) -> None:
        """Hold until resumed, or until the client closes the connection meanwhile."""
        waits = [
            asyncio.ensure_future(self._resumed.wait()),
            asyncio.ensure_future(connection.wait_closed()),
        ]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()
