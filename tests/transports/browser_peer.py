"""A simulated browser client of `WS /v1/agents/:id/session`, over a real WebSocket.

It behaves as the web client does: caller audio every 20 ms on an absolute schedule (silence
when the caller says nothing), agent audio "played" in real time, each mark echoed when the
audio before it has played, and on `clear` / `agent.interrupted` the queued audio dropped and
every pending mark echoed at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from types import TracebackType
from typing import Any

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from voxline.audio.pcm import Pcm16

FRAME_MS = 20
Event = dict[str, Any]


class BrowserPeer:
    """Use as `async with BrowserPeer(url) as peer: await peer.start()`."""

    def __init__(self, url: str, *, origin: str | None = None, sample_rate: int = 16000) -> None:
        self.url = url
        self.origin = origin
        self.sample_rate = sample_rate
        self.events: list[Event] = []
        self.echoed: list[str] = []
        self.audio_samples = 0
        self.binary_frames = 0
        self.close_code: int | None = None
        self._ws: ClientConnection | None = None
        self._speech: list[Pcm16] = []
        self._marks: list[tuple[float, str]] = []
        self._busy_until = 0.0
        self._last_audio_at = 0.0
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> BrowserPeer:
        headers = {"Origin": self.origin} if self.origin is not None else None
        self._ws = await connect(self.url, additional_headers=headers, open_timeout=10)
        self._tasks = [
            asyncio.create_task(self._receive()),
            asyncio.create_task(self._echo_due_marks()),
        ]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        assert self._ws is not None
        await self._ws.close()

    async def start(self, **fields: Any) -> Event:
        """Send `start` (at this peer's rate), begin streaming audio, return session.started."""
        await self.send_json({"type": "start", "sampleRate": self.sample_rate, **fields})
        started = await self.wait_for("session.started")
        self._tasks.append(asyncio.create_task(self._stream_microphone()))
        return started

    def say(self, pcm: Pcm16) -> None:
        """Speak `pcm` (at this peer's rate) into the microphone stream."""
        self._speech.append(pcm)

    async def send_json(self, message: Any) -> None:
        await self.send_raw(json.dumps(message))

    async def send_raw(self, frame: str | bytes) -> None:
        assert self._ws is not None
        await self._ws.send(frame)

    def of_type(self, type_: str) -> list[Event]:
        return [event for event in self.events if event["type"] == type_]

    async def wait_for(
        self,
        type_: str,
        where: Callable[[Event], bool] = lambda event: True,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> Event:
        """The first event of `type_` that satisfies `where`, once it has arrived."""
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events:
                    if event["type"] == type_ and where(event):
                        return event
                if self.close_code is not None:
                    raise AssertionError(f"closed ({self.close_code}) before {type_}")
                await self._wait_change()

    def agent_text(self) -> dict[str, str]:
        """What the agent said so far, per response label (its `agent.text` clauses joined)."""
        said: dict[str, list[str]] = {}
        for event in self.of_type("agent.text"):
            said.setdefault(event["response"], []).append(event["text"])
        return {response: " ".join(clauses) for response, clauses in said.items()}

    async def wait_for_agent(self, words: str, *, timeout: float = 10.0) -> str:  # noqa: ASYNC109
        """The label of the first response whose text contains `words`, once it does."""
        async with asyncio.timeout(timeout):
            while True:
                for response, text in self.agent_text().items():
                    if words in text:
                        return response
                if self.close_code is not None:
                    raise AssertionError(f"closed ({self.close_code}) before the agent said it")
                await self._wait_change()

    async def wait_until_quiet(
        self,
        seconds: float = 0.3,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> None:
        """Until all agent audio received has played and none came for `seconds`."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            while True:
                quiet_since = max(self._busy_until, self._last_audio_at)
                if not self._marks and loop.time() - quiet_since >= seconds:
                    return
                await self._wait_change(max(0.01, quiet_since + seconds - loop.time()))

    async def wait_closed(self, timeout: float = 10.0) -> int:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while self.close_code is None:
                await self._wait_change()
        return self.close_code

    async def _receive(self) -> None:
        assert self._ws is not None
        with contextlib.suppress(ConnectionClosed):
            async for frame in self._ws:
                self._handle(frame)
        received = self._ws.protocol.close_rcvd
        self.close_code = received.code if received is not None else 1006
        self._notify()

    def _handle(self, frame: str | bytes) -> None:
        now = asyncio.get_running_loop().time()
        if isinstance(frame, bytes):
            samples = len(frame) // 2
            self.binary_frames += 1
            self.audio_samples += samples
            self._last_audio_at = now
            self._busy_until = max(now, self._busy_until) + samples / self.sample_rate
        else:
            event = json.loads(frame)
            self.events.append(event)
            if event["type"] == "mark":
                self._marks.append((max(now, self._busy_until), event["name"]))
            elif event["type"] in ("clear", "agent.interrupted"):
                self._busy_until = now
                pending, self._marks = self._marks, []
                for _, name in pending:
                    self._echo(name)
        self._notify()

    async def _echo_due_marks(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while self._marks and self._marks[0][0] <= loop.time():
                self._echo(self._marks.pop(0)[1])
            due = self._marks[0][0] - loop.time() if self._marks else None
            await self._wait_change(due)

    def _echo(self, name: str) -> None:
        self.echoed.append(name)
        self._notify()
        self._tasks.append(asyncio.create_task(self._send_mark(name)))

    async def _send_mark(self, name: str) -> None:
        # The send is created inside the task, so a task cancelled before it runs leaves no
        # never-awaited coroutine behind.
        await self._quietly(self.send_json({"type": "mark", "name": name}))

    async def _stream_microphone(self) -> None:
        loop = asyncio.get_running_loop()
        frame = self.sample_rate * FRAME_MS // 1000
        pending = np.zeros(0, dtype=np.int16)
        start = loop.time()
        chunk = 0
        while self.close_code is None:
            chunk += 1
            delay = start + chunk * FRAME_MS / 1000 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if not pending.size and self._speech:
                pending = self._speech.pop(0)
            piece, pending = pending[:frame], pending[frame:]
            if piece.size < frame:
                piece = np.concatenate([piece, np.zeros(frame - piece.size, dtype=np.int16)])
            await self._quietly(self.send_raw(piece.astype("<i2").tobytes()))

    async def _quietly(self, sending: Any) -> None:
        with contextlib.suppress(ConnectionClosed):
            await sending

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_change(self, seconds: float | None = None) -> None:
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
        # races with the event, leaving the task waiting forever.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._changed.wait()
