"""`DrainingServer`: uvicorn, but a shutdown signal drains live calls before sockets close.

Uvicorn's own first SIGTERM/SIGINT closes every WebSocket (1012) before the app hears of it.
Here the first signal starts the engine's drain (`/ready` turns 503, new calls are refused,
live calls go on up to the drain timeout, then hear the drain message and are hung up with
`server_shutdown`); uvicorn shuts down once the drain is over. A second signal ends the
remaining calls at once (still `server_shutdown`, records written or spooled) and shuts down;
a third exits without waiting for anything.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from types import FrameType

import uvicorn
from fastapi import FastAPI

from voxline.app_state import AppState

logger = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app
        self._loop: asyncio.AbstractEventLoop | None = None
        self._signals = 0
        self._stopping: set[asyncio.Task[None]] = set()

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals == 1:
            # Re-raised by uvicorn once shut down, so the exit status says which signal it was.
            self._captured_signals.append(sig)
        state: AppState | None = getattr(self._app.state, "voxline", None)
        if self._loop is None or state is None or self._signals > 2:
            self.force_exit = self.should_exit
            self.should_exit = True
            return
        if self._signals == 1:
            logger.warning("shutdown signal: draining live calls (send it again to end them now)")
            settings = state.settings
            self._run(
                lambda: state.engine.drain(settings.drain_timeout_seconds, settings.drain_message)
            )
        else:
            logger.warning("second shutdown signal: ending live calls now")
            self._run(state.engine.abort)

    def _run(self, stop: Callable[[], Awaitable[object]]) -> None:
        """Run `stop` on the loop (we are in a signal handler), then let uvicorn shut down."""

        async def then_exit() -> None:
            try:
                await stop()
            except Exception:
                logger.exception("draining failed")
            self.should_exit = True

        def schedule() -> None:
            task = asyncio.ensure_future(then_exit())
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)

        assert self._loop is not None
        self._loop.call_soon_threadsafe(schedule)
