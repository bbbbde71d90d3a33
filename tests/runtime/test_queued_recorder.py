import asyncio
from collections.abc import Sequence

from voxline.runtime.recording import QueuedRecorder, TranscriptItem, TurnMetrics


class _SlowBatchRecorder:
    def __init__(self) -> None:
        self.batches: list[tuple[list[TranscriptItem], list[TurnMetrics]]] = []

    async def record_item(self, item: TranscriptItem) -> None:
        raise AssertionError("batches only")

    async def record_metrics(self, metrics: TurnMetrics) -> None:
        raise AssertionError("batches only")

    async def record_batch(
        self, items: Sequence[TranscriptItem], metrics: Sequence[TurnMetrics]
    ) -> None:
        self.batches.append((list(items), list(metrics)))
        await asyncio.sleep(0.05)


async def test_entries_queued_during_a_write_go_out_together_latest_version_only() -> None:
    inner = _SlowBatchRecorder()
    recorder = QueuedRecorder(inner)
    item = TranscriptItem(seq=1, role="agent", text="Hello there", at_ms=0)
    await recorder.record_item(item)
    await asyncio.sleep(0.01)  # the first write is under way
    item.heard_text = "Hello"
    await recorder.record_item(item)
    item.interrupted = True
    await recorder.record_item(item)
    await recorder.record_metrics(TurnMetrics(turn=1, turn_latency_ms=500.0))
    await recorder.aclose()

    assert len(inner.batches) == 2
    second_items, second_metrics = inner.batches[1]
    assert [(i.seq, i.heard_text, i.interrupted) for i in second_items] == [(1, "Hello", True)]
    assert [m.turn for m in second_metrics] == [1]
    assert inner.batches[0][0][0].heard_text is None, "queued entries are copies"


async def test_a_failed_write_is_retried_and_never_raised() -> None:
    class _Flaky(_SlowBatchRecorder):
        failures = 1

        async def record_batch(
            self, items: Sequence[TranscriptItem], metrics: Sequence[TurnMetrics]
        ) -> None:
            if self.failures:
                self.failures -= 1
                raise OSError("database went away")
            await super().record_batch(items, metrics)

    inner = _Flaky()
    recorder = QueuedRecorder(inner)
    await recorder.record_item(TranscriptItem(seq=1, role="caller", text="hi", at_ms=10))
    await recorder.aclose()
    assert [[i.text for i in items] for items, _ in inner.batches] == [["hi"]]
