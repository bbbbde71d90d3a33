"""A customer's webhook endpoints, as a real HTTP server on 127.0.0.1 (random port).

It checks every request's `Voxline-Signature` (401 when invalid) and records what it got.
Paths: /echo (the arguments back), /slow (answers only when released or stopped), /fail (500),
/text (plain text), /invalid-json, /big (a large JSON answer), /empty (204) and
/gather/<n> (answers once n requests are waiting there: proves concurrency without clocks).
"""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from voxline.tools.signing import SESSION_HEADER, SIGNATURE_HEADER, verify_signature

_GATHER_LIMIT_S = 5.0
_SLOW_LIMIT_S = 10.0


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    signature_valid: bool

    @property
    def session_id(self) -> str | None:
        return self.headers.get(SESSION_HEADER.lower())


class WebhookServer:
    """Run with `async with WebhookServer(secret) as server:`; `server.url("/echo")`."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.received: list[ReceivedRequest] = []
        self._released = asyncio.Event()
        self._waiting = 0
        self._arrivals = asyncio.Condition()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        app = Starlette(
            routes=[
                Route("/echo", self._echo, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
                Route("/slow", self._slow, methods=["POST"]),
                Route("/fail", self._fail, methods=["POST"]),
                Route("/text", self._text, methods=["POST"]),
                Route("/invalid-json", self._invalid_json, methods=["POST"]),
                Route("/big", self._big, methods=["POST"]),
                Route("/empty", self._empty, methods=["POST"]),
                Route("/gather/{count:int}", self._gather, methods=["POST"]),
            ]
        )
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def release(self) -> None:
        """Let every /slow request answer."""
        self._released.set()

    async def __aenter__(self) -> WebhookServer:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        async with asyncio.timeout(5):
            while not self._server.started:
                if self._task.done():
                    self._task.result()
                await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        self._socket.close()

    async def _checked(self, request: Request) -> ReceivedRequest | Response:
        """Record the request; a 401 response when its signature does not verify."""
        body = await request.body()
        received = ReceivedRequest(
            method=request.method,
            path=request.url.path,
            query=list(request.query_params.multi_items()),
            headers={key.lower(): value for key, value in request.headers.items()},
            body=body,
            signature_valid=verify_signature(
                self.secret, request.headers.get(SIGNATURE_HEADER, ""), body
            ),
        )
        self.received.append(received)
        if not received.signature_valid:
            return JSONResponse({"error": "invalid signature"}, status_code=401)
        return received

    async def _echo(self, request: Request) -> Response:
        received = await self._checked(request)
        if isinstance(received, Response):
            return received
        arguments: Any = json.loads(received.body) if received.body else received.query
        return JSONResponse({"method": received.method, "arguments": arguments})

    async def _slow(self, request: Request) -> Response:
        received = await self._checked(request)
        if isinstance(received, Response):
            return received
        async with asyncio.timeout(_SLOW_LIMIT_S):
            await self._released.wait()
        return JSONResponse({"slow": True})

    async def _fail(self, request: Request) -> Response:
        received = await self._checked(request)
        if isinstance(received, Response):
            return received
        return PlainTextResponse("database down", status_code=500)

    async def _text(self, request: Request) -> Response:
        received = await self._checked(request)
        if isinstance(received, Response):
            return received
        return PlainTextResponse("It is sunny.")

    async def _invalid_json(self, request: Request) -> Response:
        received = await self._checked(request)
        if isinstance(received, Response):
            return received
        return Response("{not json", media_type="application/json")

    async def _big(self, request: Request) -> Response:
        received = await self._checked(request)
        if isinstance(received, Response):
            return received
        return JSONResponse({"items": [f"item {index}" for index in range(2000)]})

    async def _empty(self, request: Request) -> Response:
        received = await self._checked(request)
        if isinstance(received, Response):
            return received
        return Response(status_code=204)

    async def _gather(self, request: Request) -> Response:
        received = await self._checked(request)
        if isinstance(received, Response):
            return received
        count = int(request.path_params["count"])
        async with self._arrivals:
            self._waiting += 1
            self._arrivals.notify_all()
            try:
                async with asyncio.timeout(_GATHER_LIMIT_S):
                    await self._arrivals.wait_for(lambda: self._waiting >= count)
            except TimeoutError:
                return JSONResponse({"error": "requests did not overlap"}, status_code=504)
        return JSONResponse({"arrived": count})
