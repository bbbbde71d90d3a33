"""`ListenHub`: the live audio of this process's recorded calls, for listen-in.

Writer threads publish each call's stereo frames; any number of listeners subscribe to a
call and get them on the event loop. A listener that falls behind loses the oldest audio,
never slows the call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

_BACKLOG = 50
"""Chunks a slow listener may fall behind (about 12 s) before the oldest are dropped."""


class ListenHub:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._live: set[str] = set()
        self._listeners: dict[str, set[asyncio.Queue[bytes | None]]] = {}

    def is_live(self, session_id: str) -> bool:
        return session_id in self._live

    def open(self, session_id: str) -> Callable[[bytes], None]:
        """A call starts recording; returns the thread-safe publisher of its frames."""
        self._loop = asyncio.get_running_loop()
        self._live.add(session_id)
        loop = self._loop

        def publish(frames: bytes) -> None:
            loop.call_soon_threadsafe(self._deliver, session_id, frames)

        return publish

    def close(self, session_id: str) -> None:
        """The call ended: its listeners get the end of the stream."""
        self._live.discard(session_id)
        for listener in self._listeners.pop(session_id, set()):
            listener.put_nowait(None)

    @asynccontextmanager
    async def listen(self, session_id: str) -> AsyncIterator[asyncio.Queue[bytes | None]]:
        """A queue of the call's frames from now on; None once the call has ended."""
        listener: asyncio.Queue[bytes | None] = asyncio.Queue()
        if session_id not in self._live:
            listener.put_nowait(None)
        else:
            self._listeners.setdefault(session_id, set()).add(listener)
        try:
            yield listener
        finally:
            self._listeners.get(session_id, set()).discard(listener)

    def _deliver(self, session_id: str, frames: bytes) -> None:
        for listener in self._listeners.get(session_id, ()):
            if listener.qsize() >= _BACKLOG:
                listener.get_nowait()
            listener.put_nowait(frames)
