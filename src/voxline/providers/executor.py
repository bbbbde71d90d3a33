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
    """`run` for model work; `run_urgent` for the few quick calls a caller is waiting on
    right now (a recognizer's peek while the agent speaks), which must not queue behind a
    clause being synthesized: they get a pool of their own."""

    def __init__(self, threads: int = 2) -> None:
        self.threads = threads
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="voxline-infer")
        self._urgent = ThreadPoolExecutor(max_workers=1, thread_name_prefix="voxline-urgent")

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn` in the pool and await its result without blocking the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    async def run_urgent(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a short `fn` (a few ms of compute) beside the model work, not after it."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._urgent, functools.partial(fn, *args, **kwargs))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._urgent.shutdown(wait=False, cancel_futures=True)
