"""A fake Cartesia TTS WebSocket server (/tts/websocket) on 127.0.0.1, random port.

It follows the documented protocol: `X-API-Key` checked on the upgrade (HTTP 401 otherwise)
and a `Cartesia-Version` header required (HTTP 400); generation requests carry model_id,
transcript, voice, language, context_id, output_format and `continue`. Text of a context is
buffered while `continue` is true and spoken on a flush (`flush: true`, answered by
`flush_done` with an incremented flush_id) or on the context's last input (`continue: false`,
answered by `done`). Inputs on one context must keep every field but transcript, continue
and flush; anything after the last input is an error. `{"context_id", "cancel": true}` stops
a context at once. Audio is `chunk` messages with base64 data.

The fake voice (`speak`, `spoken_text`) turns each character into 5 ms of samples equal to
its code point, so a test can read back exactly what was spoken.

Slow and failing behaviours: `first_chunk_delay_s` (before each flush's first chunk),
`pause_after_chunks` (the connection holds its audio after that many chunks until `resume()`),
`error_after_chunks` (an `error` frame for the context after that many chunks on a
connection) and `drop_after_chunks` (the first connection dies without a close frame).
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
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

_WAIT_LIMIT_S = 5.0
_CHARS_PER_CHUNK = 4
_PER_INPUT_FIELDS = frozenset({"transcript", "continue", "flush", "duration", "context_id"})


def speak(text: str, rate: int) -> npt.NDArray[np.int16]:
    """The fake voice: 5 ms per character, every sample equal to the character's code."""
    codes = np.array([ord(char) for char in text], dtype=np.int16)
    return np.repeat(codes, rate // 200)


def spoken_text(pcm: npt.NDArray[np.int16], rate: int) -> str:
    """What the fake voice said in `pcm` (the inverse of `speak`)."""
    return "".join(chr(int(code)) for code in pcm[:: rate // 200])


@dataclass
class _Context:
    fields: dict[str, Any]
    pending: str = ""
    flush_id: int = 0
    finished: bool = False
    cancelled: bool = False
    work: asyncio.Queue[tuple[str, str]] = field(default_factory=asyncio.Queue)
    """(text to speak, then 'flush_done' / 'done')."""


@dataclass
class ConnectionLog:
    headers: Headers
    messages: list[dict[str, Any]] = field(default_factory=list)
    chunks_sent: int = 0


class FakeCartesia:
    """Run with `async with FakeCartesia() as fake:`; point the spec's base_url at
    `fake.base_url`."""

    def __init__(
        self,
        api_key: str = "sk-cartesia-test",
        *,
        first_chunk_delay_s: float = 0.0,
        pause_after_chunks: int | None = None,
        error_after_chunks: int | None = None,
        drop_after_chunks: int | None = None,
    ) -> None:
        self.api_key = api_key
        self.first_chunk_delay_s = first_chunk_delay_s
        self.pause_after_chunks = pause_after_chunks
        self._resumed = asyncio.Event()
        self.error_after_chunks = error_after_chunks
        self.drop_after_chunks = drop_after_chunks
        self.connections: list[ConnectionLog] = []
        self.cancelled: list[str] = []
        self._changed = asyncio.Condition()
        self._server: Server | None = None
        self.base_url = ""

    @property
    def inputs(self) -> list[dict[str, Any]]:
        """Every generation request received, over all connections, in order."""
        return [m for log in self.connections for m in log.messages if "transcript" in m]

    async def __aenter__(self) -> FakeCartesia:
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

    def resume(self) -> None:
        """Let connections paused by `pause_after_chunks` go on."""
        self._resumed.set()

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait (a few seconds at most) until `condition()` holds after some client message."""
        async with asyncio.timeout(_WAIT_LIMIT_S), self._changed:
            await self._changed.wait_for(condition)

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        if urlsplit(request.path).path != "/tts/websocket":
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found")
        if request.headers.get("X-API-Key") != self.api_key:
            return connection.respond(HTTPStatus.UNAUTHORIZED, "Invalid API key")
        if not request.headers.get("Cartesia-Version"):
            return connection.respond(HTTPStatus.BAD_REQUEST, "Cartesia-Version is required")
        return None

    async def _serve(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        log = ConnectionLog(connection.request.headers)
        self.connections.append(log)
        contexts: dict[str, _Context] = {}
        workers: list[asyncio.Task[None]] = []
        await self._notify()
        try:
            async for frame in connection:
                message = json.loads(frame)
                log.messages.append(message)
                context_id = str(message.get("context_id"))
                if message.get("cancel") is True:
                    self.cancelled.append(context_id)
                    if context_id in contexts:
                        contexts[context_id].cancelled = True
                else:
                    error = self._accept(message, contexts)
                    if error is not None:
                        await connection.send(json.dumps(_error(context_id, error)))
                    elif context_id not in _running(workers):
                        task = asyncio.create_task(
                            self._generate(connection, log, context_id, contexts[context_id]),
                            name=context_id,
                        )
                        workers.append(task)
                await self._notify()
        except ConnectionClosed:
            pass
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await self._notify()

    def _accept(self, message: dict[str, Any], contexts: dict[str, _Context]) -> str | None:
        """Queue a generation request's work on its context; an error text if it is invalid."""
        context_id = message.get("context_id")
        if not isinstance(context_id, str) or not context_id:
            return "context_id is required"
        fields = {k: v for k, v in message.items() if k not in _PER_INPUT_FIELDS}
        output = fields.get("output_format", {})
        if output.get("container") != "raw" or output.get("encoding") != "pcm_s16le":
            return f"unsupported output format {output}"
        context = contexts.setdefault(context_id, _Context(fields))
        if context.finished:
            return f"context {context_id} has already received its last input"
        if fields != context.fields:
            return "inputs on one context must keep the same fields"
        context.pending += str(message.get("transcript", ""))
        if message.get("continue") is not True:
            context.finished = True
            context.work.put_nowait((context.pending, "done"))
            context.pending = ""
        elif message.get("flush") is True:
            context.work.put_nowait((context.pending, "flush_done"))
            context.pending = ""
        return None

    async def _generate(
        self, connection: ServerConnection, log: ConnectionLog, context_id: str, context: _Context
    ) -> None:
        rate = int(context.fields["output_format"]["sample_rate"])
        while True:
            text, ending = await context.work.get()
            await asyncio.sleep(self.first_chunk_delay_s)
            for start in range(0, len(text), _CHARS_PER_CHUNK):
                if context.cancelled:
                    return
                if log is self.connections[0] and log.chunks_sent == self.drop_after_chunks:
                    connection.transport.abort()
                    return
                if log.chunks_sent == self.pause_after_chunks:
                    await self._resumed.wait()
                    if context.cancelled:
                        return
                if log.chunks_sent == self.error_after_chunks:
                    await connection.send(json.dumps(_error(context_id, "generation failed")))
                    return
                pcm = speak(text[start : start + _CHARS_PER_CHUNK], rate)
                await connection.send(json.dumps(_chunk(context_id, pcm, context.flush_id + 1)))
                log.chunks_sent += 1
                await self._notify()
            if context.cancelled:
                return
            context.flush_id += 1
            end: dict[str, Any] = {"type": ending, "status_code": 206, "context_id": context_id}
            if ending == "flush_done":
                end.update(done=False, flush_done=True, flush_id=context.flush_id)
            else:
                end["done"] = True
            with contextlib.suppress(ConnectionClosed):
                await connection.send(json.dumps(end))
            if ending == "done":
                return

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()


def _running(workers: list[asyncio.Task[None]]) -> list[str]:
    return [task.get_name() for task in workers if not task.done()]


def _chunk(context_id: str, pcm: npt.NDArray[np.int16], flush_id: int) -> dict[str, Any]:
    return {
        "type": "chunk",
        "data": base64.b64encode(pcm.astype("<i2").tobytes()).decode(),
        "done": False,
        "status_code": 206,
        "step_time": 1.0,
        "flush_id": flush_id,
        "context_id": context_id,
    }


def _error(context_id: str, text: str) -> dict[str, Any]:
    return {
        "type": "error",
        "done": True,
        "error": text,
        "status_code": 400,
        "context_id": context_id,
    }
