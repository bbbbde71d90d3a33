"""Call control relayed over Redis between two processes' `CallControl`s (in one test process)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from redis.asyncio import Redis

from voxline.calls.live import LiveCalls
from voxline.live.control import CallControl, Outcome
from voxline.runtime.phase import EndReason
from voxline.runtime.transport import TransferUnsupported

REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass
class FakeCall:
    """A live call that records what it was asked; `phone` False refuses transfers."""

    phone: bool = True
    done: list[str] = field(default_factory=list)

    async def hang_up_now(self, reason: EndReason) -> bool:
        self.done.append("hangup")
        return True

    async def say_then_hang_up(self, text: str, reason: EndReason) -> bool:
        self.done.append(f"say {text} and hang up")
        return True

    async def transfer_now(self, number: str) -> None:
        if not self.phone:
            raise TransferUnsupported("a browser session has no phone line to transfer")
        self.done.append(f"transfer {number}")

    async def say_now(self, text: str) -> bool:
        self.done.append(f"say {text}")
        return True


@dataclass
class Pair:
    owner: CallControl
    other: CallControl
    redis: Redis
    prefix: str


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    redis = Redis.from_url(REDIS_URL)
    prefix = f"voxline-test-{uuid.uuid4().hex[:12]}"
    owner = CallControl(LiveCalls(), redis=redis, prefix=prefix, process_id="proc_owner")
    other = CallControl(LiveCalls(), redis=redis, prefix=prefix, process_id="proc_other")
    await owner.start()
    await other.start()
    try:
        yield Pair(owner, other, redis, prefix)
    finally:
        await owner.aclose()
        await other.aclose()
        keys = [key async for key in redis.scan_iter(f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def _live_on_owner(pair: Pair, call: FakeCall) -> str:
    session_id = f"sess_{uuid.uuid4().hex}"
    pair.owner.calls.add(session_id, call)
    await pair.owner.claim(session_id)
    return session_id


async def test_commands_sent_to_another_process_reach_the_call(pair: Pair) -> None:
    call = FakeCall()
    session_id = await _live_on_owner(pair, call)

    for command, argument in (("say", "Hold on."), ("transfer", "+14155550100"), ("hangup", "")):
        result = await pair.other.act(session_id, command, argument)  # type: ignore[arg-type]
        assert result.outcome is Outcome.DONE, result

    assert call.done == ["say Hold on.", "transfer +14155550100", "hangup"]


async def test_a_refusal_comes_back_with_its_reason(pair: Pair) -> None:
    session_id = await _live_on_owner(pair, FakeCall(phone=False))

    result = await pair.other.act(session_id, "transfer", "+14155550100")

    assert result.outcome is Outcome.REFUSED
    assert "no phone line" in result.message


async def test_a_session_no_process_owns_is_not_live(pair: Pair) -> None:
    result = await pair.other.act("sess_unknown", "hangup")

    assert result.outcome is Outcome.NOT_LIVE
    assert "not live on any server process" in result.message


async def test_a_call_released_by_its_process_is_not_live(pair: Pair) -> None:
    session_id = await _live_on_owner(pair, FakeCall())
    await pair.owner.release(session_id)

    assert (await pair.other.act(session_id, "hangup")).outcome is Outcome.NOT_LIVE


async def test_a_call_of_a_process_that_stopped_listening_is_not_live(pair: Pair) -> None:
    session_id = await _live_on_owner(pair, FakeCall())
    await pair.owner.aclose()

    result = await pair.other.act(session_id, "hangup")

    assert result.outcome is Outcome.NOT_LIVE
    assert "not listening" in result.message


async def test_an_unreachable_redis_makes_control_unavailable_not_a_crash() -> None:
    # Nothing listens on port 1: every Redis command fails to connect.
    redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    control = CallControl(LiveCalls(), redis=redis, prefix="voxline-test", process_id="proc_x")
    try:
        result = await control.act("sess_elsewhere", "hangup")
    finally:
        await redis.aclose()

    assert result.outcome is Outcome.UNAVAILABLE
