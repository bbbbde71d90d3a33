"""Run a blocking iterator in the InferenceExecutor and consume it as an async iterator.

Model libraries produce tokens and audio from blocking generators. `iterate_in_executor`
drives one such generator on a pool thread and hands each item to the event loop as soon as
it exists. When the consumer stops early (break, cancellation on barge-in), the producer is
told to stop: it finishes the step it is computing (one token, one sentence of audio), drops
it, and closes the generator on its own thread. The consumer never waits for that.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from voxline.providers.base import ProviderError
from voxline.providers.executor import InferenceExecutor

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Item(Generic[T]):
    value: T


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


@dataclass(frozen=True, slots=True)
class _Finished:
    pass


_Message = _Item[T] | _Failed | _Finished

# Producers that outlive their consumer keep running until their current step ends; holding
# a reference keeps their task from being garbage-collected meanwhile.
_running_producers: set[asyncio.Future[None]] = set()


async def iterate_in_executor(
    executor: InferenceExecutor, produce: Callable[[], Iterator[T]]
) -> AsyncGenerator[T, None]:
    """Yield the items of `produce()`, which is called and iterated on an executor thread.

    An exception raised by the producer is re-raised here. Leaving the iteration early lets
    the producer finish the item it is computing, then closes it on its own thread.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[_Message[T]] = asyncio.Queue()
    stop = threading.Event()

    def post(message: _Message[T]) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, message)
        except RuntimeError:  # the event loop has closed: nobody is listening any more
            stop.set()

    def pump() -> None:
        try:
            iterator = produce()
            try:
                for value in iterator:
                    post(_Item(value))
                    if stop.is_set():
                        return
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()
        except Exception as error:
            post(_Failed(error))
            return
        post(_Finished())

    def on_pump_done(job: asyncio.Future[None]) -> None:
        _running_producers.discard(job)
        # The pump reports its own errors; this only fires when it never ran (executor shut down).
        if job.cancelled() or job.exception() is not None:
            queue.put_nowait(_Failed(ProviderError("the inference executor stopped")))

    job = asyncio.ensure_future(executor.run(pump))
    _running_producers.add(job)
    job.add_done_callback(on_pump_done)
    try:
        while True:
            message = await queue.get()
            if isinstance(message, _Item):
                yield message.value
            elif isinstance(message, _Failed):
                raise message.error
            else:
                return
    finally:
        stop.set()
