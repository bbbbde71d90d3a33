"""A fake Deepgram live-transcription server (WebSocket /v1/listen) on 127.0.0.1, random port.

It follows the documented protocol: `Authorization: Token <key>` checked on the upgrade
(HTTP 401 otherwise), binary audio frames (`encoding=linear16`, 2 bytes a sample, or
`encoding=mulaw`, 1 byte a sample, at `sample_rate`; any other encoding is HTTP 400),
JSON `KeepAlive` / `Finalize` / `CloseStream`.
Each segment plays a scripted transcript: on its first audio a `SpeechStarted` and an interim
`Results` with the first word; once `final_after_bytes` of audio arrived a final `Results`
with the first half of the words; on `Finalize` the rest, as a final `Results` marked
`from_finalize` (and `speech_final`), then an `UtteranceEnd`.

Failure behaviours: `answer_finalize=False` never answers Finalize; `drop_after_bytes` kills
the first connection without a close frame once that much audio arrived; `reject_reconnects`
answers HTTP 503 to every connection after the first.
"""

from __future__ import annotations

import asyncio
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

_WAIT_LIMIT_S = 5.0
_BYTES_PER_SAMPLE = {"linear16": 2, "mulaw": 1}


@dataclass
class ConnectionLog:
    """What one client connection sent."""

    query: dict[str, str]
    headers: Headers
    controls: list[str] = field(default_factory=list)
    audio_bytes: int = 0


@dataclass
class _Segment:
    words: list[str]
    audio_bytes: int = 0
    finals_sent: int = 0
    """How many words already went out in final results."""


class FakeDeepgram:
    """Run with `async with FakeDeepgram() as fake:`; point the spec's base_url at
    `fake.base_url`."""

    def __init__(
        self,
        api_key: str = "dg-test-key",
        transcripts: tuple[str, ...] = ("hello there how are you",),
        *,
        final_after_bytes: int = 3200,
        answer_finalize: bool = True,
        drop_after_bytes: int | None = None,
        reject_reconnects: bool = False,
    ) -> None:
        self.api_key = api_key
        self.transcripts = transcripts
        self.final_after_bytes = final_after_bytes
        self.answer_finalize = answer_finalize
        self.drop_after_bytes = drop_after_bytes
        self.reject_reconnects = reject_reconnects
        self.connections: list[ConnectionLog] = []
        self.rejected: list[int] = []
        self._segments_started = 0
        self._changed = asyncio.Condition()
        self._server: Server | None = None
        self.base_url = ""

    async def __aenter__(self) -> FakeDeepgram:
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

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait (a few seconds at most) until `condition()` holds after some client message."""
        async with asyncio.timeout(_WAIT_LIMIT_S), self._changed:
            await self._changed.wait_for(condition)

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        if urlsplit(request.path).path != "/v1/listen":
            return self._reject(connection, HTTPStatus.NOT_FOUND, "no such endpoint")
        if request.headers.get("Authorization") != f"Token {self.api_key}":
            return self._reject(connection, HTTPStatus.UNAUTHORIZED, "Invalid credentials.")
        encoding = dict(parse_qsl(urlsplit(request.path).query)).get("encoding", "linear16")
        if encoding not in _BYTES_PER_SAMPLE:
            return self._reject(connection, HTTPStatus.BAD_REQUEST, f"bad encoding {encoding}")
        if self.reject_reconnects and self.connections:
            return self._reject(connection, HTTPStatus.SERVICE_UNAVAILABLE, "try later")
        return None

    def _reject(self, connection: ServerConnection, status: HTTPStatus, text: str) -> Response:
        self.rejected.append(status.value)
        return connection.respond(status, json.dumps({"err_code": status.phrase, "err_msg": text}))

    async def _serve(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        query = dict(parse_qsl(urlsplit(connection.request.path).query))
        log = ConnectionLog(query, connection.request.headers)
        first_connection = not self.connections
        self.connections.append(log)
        encoding = query.get("encoding", "linear16")
        bytes_per_s = int(query.get("sample_rate", "16000")) * _BYTES_PER_SAMPLE[encoding]
        segment = self._next_segment()
        await self._notify()
        try:
            async for frame in connection:
                if isinstance(frame, bytes):
                    log.audio_bytes += len(frame)
                    if (
                        first_connection
                        and self.drop_after_bytes is not None
                        and log.audio_bytes >= self.drop_after_bytes
                    ):
                        connection.transport.abort()
                        return
                    await self._on_audio(connection, segment, len(frame), log, bytes_per_s)
                else:
                    kind = str(json.loads(frame).get("type"))
                    log.controls.append(kind)
                    if kind == "Finalize":
                        if segment.audio_bytes:
                            if self.answer_finalize:
                                await self._finish(connection, segment, log, bytes_per_s)
                            segment = self._next_segment()
                    elif kind == "CloseStream":
                        await connection.send(json.dumps({"type": "Metadata", "duration": 0.0}))
                        await connection.close()
                        return
                await self._notify()
        except ConnectionClosed:
            pass
        finally:
            await self._notify()

    async def _on_audio(
        self,
        connection: ServerConnection,
        segment: _Segment,
        size: int,
        log: ConnectionLog,
        bytes_per_s: int,
    ) -> None:
        first = segment.audio_bytes == 0
        segment.audio_bytes += size
        now = log.audio_bytes / bytes_per_s
        if first:
            await connection.send(json.dumps({"type": "SpeechStarted", "timestamp": now}))
            await connection.send(json.dumps(_results(segment.words[:1], now, is_final=False)))
        if segment.finals_sent == 0 and segment.audio_bytes >= self.final_after_bytes:
            segment.finals_sent = max(1, len(segment.words) // 2)
            words = segment.words[: segment.finals_sent]
            await connection.send(json.dumps(_results(words, now, is_final=True)))

    async def _finish(
        self, connection: ServerConnection, segment: _Segment, log: ConnectionLog, bytes_per_s: int
    ) -> None:
        now = log.audio_bytes / bytes_per_s
        rest = segment.words[segment.finals_sent :]
        message = _results(rest, now, is_final=True, speech_final=True, from_finalize=True)
        await connection.send(json.dumps(message))
        await connection.send(json.dumps({"type": "UtteranceEnd", "last_word_end": now}))

    def _next_segment(self) -> _Segment:
        text = self.transcripts[self._segments_started % len(self.transcripts)]
        self._segments_started += 1
        return _Segment(text.split())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()


def _results(
    words: list[str],
    now: float,
    *,
    is_final: bool,
    speech_final: bool = False,
    from_finalize: bool = False,
) -> dict[str, Any]:
    return {
        "type": "Results",
        "channel_index": [0, 1],
        "duration": 0.5,
        "start": max(0.0, now - 0.5),
        "is_final": is_final,
        "speech_final": speech_final,
        "from_finalize": from_finalize,
        "channel": {
            "alternatives": [{"transcript": " ".join(words), "confidence": 0.98, "words": []}]
        },
        "metadata": {"request_id": "fake-request", "model_info": {"name": "fake"}},
    }
