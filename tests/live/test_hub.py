"""The event hub's logs: in memory (one process) and Redis Streams (a fleet)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from voxline.live.hub import EventHub, EventLog, MemoryLog, RedisLog, session_key, workspace_key
from voxline.runtime.events import SessionEnded, SessionStarted, TranscriptFinal

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["memory", "redis"])
async def log(request: pytest.FixtureRequest) -> AsyncIterator[EventLog]:
    if request.param == "memory":
        yield MemoryLog(max_len=20)
        return
    redis = Redis.from_url(REDIS_URL)
    prefix = f"voxline-test-{uuid.uuid4().hex[:12]}"
    try:
        yield RedisLog(redis, prefix, max_len=20)
    finally:
        keys = [key async for key in redis.scan_iter(f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def test_a_reader_gets_the_history_then_what_comes_after(log: EventLog) -> None:
    await log.append("k", "one")
    await log.append("k", "two")
    history = await log.read("k", None, 0)
    waiting = asyncio.ensure_future(log.read("k", history[-1].id, 5))
    await asyncio.sleep(0.05)
    await log.append("k", "three")

    assert [entry.data for entry in history] == ["one", "two"]
    assert [entry.data for entry in await waiting] == ["three"]


async def test_resuming_after_an_id_skips_what_was_seen(log: EventLog) -> None:
    for text in ("a", "b", "c"):
        await log.append("k", text)
    seen = await log.read("k", None, 0)

    assert [entry.data for entry in await log.read("k", seen[0].id, 0)] == ["b", "c"]
    assert await log.read("k", seen[-1].id, 0.05) == []


async def test_each_log_keeps_a_bounded_history(log: EventLog) -> None:
    for index in range(300):
        await log.append("k", str(index))
    kept = await log.read("k", None, 0)
    while more := await log.read("k", kept[-1].id, 0):
        kept += more

    # Redis trims approximately (whole macro nodes): bounded, far below what was added.
    assert 20 <= len(kept) < 300
    assert kept[-1].data == "299"


async def test_the_hub_publishes_a_call_and_its_start_and_end_to_the_workspace() -> None:
    hub = EventHub(MemoryLog(max_len=50))
    hub.publish(
        "ws_1", "sess_1", SessionStarted(agent_id="agent_1", channel="web", direction="inbound")
    )
    hub.publish("ws_1", "sess_1", TranscriptFinal(seq=1, text="hi", source="text"))
    hub.publish("ws_1", "sess_1", SessionEnded(seq=2, reason="caller_hangup"))
    await hub.aclose()

    call = await hub.log.read(session_key("sess_1"), None, 0)
    workspace = await hub.log.read(workspace_key("ws_1"), None, 0)
    assert [json.loads(e.data)["type"] for e in call] == [
        "session.started",
        "transcript.final",
        "session.ended",
    ]
    assert [json.loads(e.data)["sessionId"] for e in workspace] == ["sess_1", "sess_1"]
