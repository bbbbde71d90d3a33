import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

import pytest

from voxline.providers.base import ProviderError
from voxline.providers.executor import InferenceExecutor
from voxline.providers.streaming import iterate_in_executor

# Only guards against a hung test; no assertion depends on it.
HANG_GUARD_S = 10.0


@pytest.fixture
def executor() -> Iterator[InferenceExecutor]:
    pool = InferenceExecutor(threads=2)
    yield pool
    pool.shutdown()


class GatedProducer:
    """Yields 1 at once, 2 once `release` is set, then 3; records what happened, per thread."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.finished = threading.Event()
        self.yielded: list[int] = []
        self.closed_early = False

    def __call__(self) -> Iterator[int]:
        try:
            for value in (1, 2, 3):
                if value == 2:
                    self.release.wait(HANG_GUARD_S)
                self.yielded.append(value)
                yield value
        except GeneratorExit:
            self.closed_early = True
            raise
        finally:
            self.finished.set()


async def collect(stream: AsyncIterator[int]) -> list[int]:
    return [item async for item in stream]


async def test_yields_the_producers_items_in_order(executor: InferenceExecutor) -> None:
    assert await collect(iterate_in_executor(executor, lambda: iter(range(5)))) == [0, 1, 2, 3, 4]


async def test_producer_runs_off_the_event_loop_thread(executor: InferenceExecutor) -> None:
    def produce() -> Iterator[int]:
        yield threading.get_ident()

    assert await collect(iterate_in_executor(executor, produce)) != [threading.get_ident()]


async def test_producer_error_is_raised_to_the_consumer_after_its_items(
    executor: InferenceExecutor,
) -> None:
    def produce() -> Iterator[int]:
        yield 1
        raise ValueError("model exploded")

    received: list[int] = []
    with pytest.raises(ValueError, match="model exploded"):
        async for item in iterate_in_executor(executor, produce):
            received.append(item)
    assert received == [1]


async def test_breaking_out_closes_the_producer_after_the_item_in_flight(
    executor: InferenceExecutor,
) -> None:
    producer = GatedProducer()
    stream = iterate_in_executor(executor, producer)
    async for _ in stream:
        break
    await stream.aclose()
    producer.release.set()
    await asyncio.to_thread(producer.finished.wait, HANG_GUARD_S)
    assert producer.yielded in ([1], [1, 2])  # [1] when the stop came before the next request
    assert producer.closed_early


async def test_cancelling_the_consumer_closes_the_producer_after_the_item_in_flight(
    executor: InferenceExecutor,
) -> None:
    producer = GatedProducer()
    first_item = asyncio.Event()

    async def consume() -> None:
        async for _ in iterate_in_executor(executor, producer):
            first_item.set()

    task = asyncio.create_task(consume())
    await first_item.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    producer.release.set()
    await asyncio.to_thread(producer.finished.wait, HANG_GUARD_S)
    assert producer.yielded in ([1], [1, 2])  # [1] when the stop came before the next request
    assert producer.closed_early


async def test_stopped_executor_is_a_provider_error(executor: InferenceExecutor) -> None:
    executor.shutdown()
    with pytest.raises(ProviderError, match="executor stopped"):
        await collect(iterate_in_executor(executor, lambda: iter([1])))
