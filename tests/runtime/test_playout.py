import asyncio
import time

import numpy as np
import pytest

from voxline.audio.pcm import Pcm16
from voxline.runtime import playout as playout_module
from voxline.runtime.playout import Playout

from .fakes import FakeTransport

RATE = 16000


def tone(ms: int) -> Pcm16:
    return np.full(RATE * ms // 1000, 1000, dtype=np.int16)


def make_playout(transport: FakeTransport) -> Playout:
    return Playout(transport, clock=time.monotonic, lead_ms=200, chunk_ms=60)


async def pump_marks(transport: FakeTransport, playout: Playout) -> None:
    async for event in transport.events():
        name = getattr(event, "name", None)
        if name is not None:
            playout.on_mark(name)


@pytest.fixture
def transport() -> FakeTransport:
    return FakeTransport(RATE, RATE)


async def test_audio_is_sent_in_chunks_each_followed_by_a_uniquely_named_mark(
    transport: FakeTransport,
) -> None:
    playout = make_playout(transport)
    utterance = playout_module.Utterance("r1")
    await playout.write(utterance, tone(150))
    sent = [(e.kind, e.samples or e.name) for e in transport.log if e.kind != "echo"]
    assert sent == [
        ("audio", 960),
        ("mark", "r1.c1"),
        ("audio", 960),
        ("mark", "r1.c2"),
        ("audio", 480),
        ("mark", "r1.c3"),
    ]


async def test_audio_is_never_sent_further_ahead_than_the_lead(transport: FakeTransport) -> None:
    playout = make_playout(transport)
    await playout.write(playout_module.Utterance("r1"), tone(1000))
    audio = [e for e in transport.log if e.kind == "audio"]
    start = audio[0].at
    sent_s = 0.0
    for entry in audio:
        sent_s += entry.samples / RATE
        # What was sent minus what has played by now never exceeds the lead.
        assert sent_s - (entry.at - start) <= 0.2 + 1e-3


async def test_echoed_marks_advance_what_was_heard_and_end_the_wait(
    transport: FakeTransport,
) -> None:
    playout = make_playout(transport)
    pump = asyncio.ensure_future(pump_marks(transport, playout))
    utterance = playout_module.Utterance("r1")
    await playout.write(utterance, tone(300))
    assert utterance.heard < utterance.sent
    await playout.wait_played(utterance)
    assert utterance.heard == utterance.sent == RATE * 300 // 1000
    assert not playout.busy
    pump.cancel()


async def test_marks_echoed_by_a_clear_do_not_count_as_heard(transport: FakeTransport) -> None:
    playout = make_playout(transport)
    pump = asyncio.ensure_future(pump_marks(transport, playout))
    utterance = playout_module.Utterance("r1")
    utterance.begin_clause("one two three four", RATE)
    writing = asyncio.ensure_future(playout.write(utterance, tone(1000)))
    await asyncio.sleep(0.3)
    writing.cancel()
    await playout.clear()
    await asyncio.sleep(0.05)  # the echoes of the cleared marks arrive now
    assert utterance.cleared
    # About 300 ms were played; the estimate never claims what was not sent.
    assert RATE * 0.2 < utterance.heard < RATE * 0.5
    assert utterance.heard <= utterance.sent < RATE
    heard, unheard = utterance.split_heard()
    assert heard == "one"
    assert unheard == "two three four"
    pump.cancel()


async def test_writing_to_a_cleared_utterance_sends_nothing(transport: FakeTransport) -> None:
    playout = make_playout(transport)
    utterance = playout_module.Utterance("r1")
    await playout.write(utterance, tone(60))
    await playout.clear()
    count = len(transport.log)
    await playout.write(utterance, tone(60))
    assert len(transport.log) == count


async def test_clear_with_nothing_playing_sends_nothing(transport: FakeTransport) -> None:
    await make_playout(transport).clear()
    assert transport.log == []


async def test_a_far_end_that_never_echoes_does_not_hang_the_wait(
    transport: FakeTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(playout_module, "MARK_GRACE_S", 0.1)
    playout = make_playout(transport)  # nobody pumps the echoes
    utterance = playout_module.Utterance("r1")
    await playout.write(utterance, tone(100))
    async with asyncio.timeout(2):
        await playout.wait_played(utterance)
    assert utterance.heard == utterance.sent
    assert not playout.busy
