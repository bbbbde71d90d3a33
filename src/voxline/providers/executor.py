"""The bounded thread pool every blocking model call runs in, so audio I/O never waits on it.

One per process, shared by all calls. onnxruntime, CTranslate2 and llama.cpp release the GIL
while they compute, so a few threads give real parallelism; the bound keeps many concurrent
calls from oversubscribing the cores (they queue instead, and degrade gracefully).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class InferenceExecutor:
    def __init__(self, threads: int = 2) -> None:
        self.threads = threads
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="voxline-infer")

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn` in the pool and await its result without blocking the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
