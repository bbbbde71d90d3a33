"""The simulated Twilio (`TwilioCloud`) on an event loop of its own thread, so that blocking
test code and `voxline serve` processes can run beside it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from voxline.simulator.twilio_cloud import TwilioCloud

T = TypeVar("T")


class CloudThread:
    def __init__(self, cloud: TwilioCloud, loop: asyncio.AbstractEventLoop) -> None:
        self.cloud = cloud
        self._loop = loop

    def run(self, make: Callable[[], Awaitable[T]], timeout: float = 60.0) -> T:
        """Run a coroutine on the cloud's loop and wait for its result."""

        async def call() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout)

    def server_env(self) -> dict[str, str]:
        cloud = self.cloud
        return {
            "VOXLINE_TWILIO_API_BASE_URL": cloud.base_url,
            "VOXLINE_TWILIO_ACCOUNT_SID": cloud.account_sid,
            "VOXLINE_TWILIO_AUTH_TOKEN": cloud.auth_token,
        }


@contextmanager
def running_cloud(**options: Any) -> Iterator[CloudThread]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="twilio-cloud", daemon=True)
    thread.start()
    cloud = TwilioCloud(**options)
    try:
        asyncio.run_coroutine_threadsafe(cloud.start(), loop).result(60)
        yield CloudThread(cloud, loop)
    finally:
        asyncio.run_coroutine_threadsafe(cloud.stop(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
