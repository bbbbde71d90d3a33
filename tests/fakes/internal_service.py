"""An internal HTTP service a deployment must not expose, as a real listener on 127.0.0.1.

It answers every request with a secret JSON body (or a redirect to `redirect_to`) and records
each request line, `Host` and `Connection` header, so a test can tell whether the server
reached it.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from types import TracebackType

SECRET_BODY = {"internal": "secret-of-the-internal-service"}


@dataclass(frozen=True)
class Hit:
    request_line: str
    host: str
    connection: str


class InternalService:
    """`async with InternalService() as service:`; `service.url("/path")`, `service.hits`."""

    def __init__(self, *, redirect_to: str | None = None, bind: str = "127.0.0.1") -> None:
        self.redirect_to = redirect_to
        self.bind = bind
        self.hits: list[Hit] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    def url(self, path: str = "/", *, host: str | None = None, scheme: str = "http") -> str:
        return f"{scheme}://{host or self.bind}:{self.port}{path}"

    async def __aenter__(self) -> InternalService:
        self._server = await asyncio.start_server(self._serve, self.bind, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:] if line)
        }
        self.hits.append(Hit(lines[0], headers.get("host", ""), headers.get("connection", "")))
        length = int(headers.get("content-length", "0") or 0)
        if length:
            await reader.readexactly(length)
        if self.redirect_to is not None:
            status, extra, body = "302 Found", f"Location: {self.redirect_to}\r\n", b""
        else:
            status, extra, body = "200 OK", "", json.dumps(SECRET_BODY).encode()
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()
