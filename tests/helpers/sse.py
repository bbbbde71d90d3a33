"""A Server-Sent Events reader for tests: messages as (id, event, data) until a type or the end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class SseMessage:
    id: str | None
    event: str
    data: dict[str, Any]


class SseStream:
    """`async with SseStream(base_url, path, key) as stream: await stream.next()`."""

    def __init__(
        self, base_url: str, path: str, api_key: str, headers: Mapping[str, str] | None = None
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}", **(headers or {})},
            timeout=httpx.Timeout(10.0, read=60.0),
        )
        self._path = path
        self._context: Any = None
        self._lines: Any = None
        self.status_code = 0
        self.messages: list[SseMessage] = []

    async def __aenter__(self) -> SseStream:
        self._context = self._client.stream("GET", self._path)
        response: httpx.Response = await self._context.__aenter__()
        self.status_code = response.status_code
        self._lines = response.aiter_lines()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._context.__aexit__(None, None, None)
        await self._client.aclose()

    async def next(self, timeout: float = 15.0) -> SseMessage | None:  # noqa: ASYNC109
        """The next message; None once the stream has ended."""
        return await asyncio.wait_for(self._next(), timeout)

    async def _next(self) -> SseMessage | None:
        entry_id: str | None = None
        event = "message"
        data: list[str] = []
        async for line in self._lines:
            if line == "":
                if data:
                    message = SseMessage(entry_id, event, json.loads("\n".join(data)))
                    self.messages.append(message)
                    return message
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "id":
                entry_id = value
            elif name == "event":
                event = value
            elif name == "data":
                data.append(value)
        return None

    async def until(self, event: str, timeout: float = 15.0) -> SseMessage:  # noqa: ASYNC109
        """Read on to the first message of type `event`."""
        async with asyncio.timeout(timeout):
            while (message := await self._next()) is not None:
                if message.event == event:
                    return message
        raise AssertionError(f"the stream ended before {event}: {self.messages}")

    async def rest(self, timeout: float = 15.0) -> list[SseMessage]:  # noqa: ASYNC109
        """Every message up to the end of the stream."""
        async with asyncio.timeout(timeout):
            while await self._next() is not None:
                pass
        return self.messages
