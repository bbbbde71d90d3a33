"""`CallControl`: hang up, transfer or speak into a live call, from whichever process is asked.

The calls of this process are in `LiveCalls`. A command for one of them is carried out here;
with Redis, a command for a call of another process is relayed to it: each process marks the
calls it holds (`<prefix>:owner:<session>`, refreshed while they live, so a dead process owns
nothing after `OWNER_TTL_S`), listens on its own channel (`<prefix>:control:<process>`), and
answers on a list the asker waits on (`<prefix>:reply:<request>`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Literal

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from voxline.calls.live import LiveCall, LiveCalls
from voxline.runtime.transport import TransferUnsupported

logger = logging.getLogger(__name__)

Command = Literal["hangup", "transfer", "say"]

OWNER_TTL_S = 30
_REFRESH_S = OWNER_TTL_S / 3
_REPLY_TIMEOUT_S = 10.0


class Outcome(enum.Enum):
    DONE = "done"
    NOT_LIVE = "not_live"
    REFUSED = "refused"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class ControlResult:
    outcome: Outcome
    message: str = ""


async def act_locally(call: LiveCall | None, command: Command, argument: str) -> ControlResult:
    """Carry out `command` on `call` of this process."""
    if call is None:
        return ControlResult(Outcome.NOT_LIVE, "the session is not live on any server process")
    try:
        if command == "hangup":
            await call.hang_up_now("operator_hangup")
        elif command == "transfer":
            await call.transfer_now(argument)
        elif not await call.say_now(argument):
            return ControlResult(Outcome.REFUSED, "the call is not taking new lines (ending)")
    except TransferUnsupported as exc:
        return ControlResult(Outcome.REFUSED, str(exc))
    except Exception as exc:
        logger.warning("%s on a live call failed: %s", command, exc)
        return ControlResult(Outcome.REFUSED, f"{command} failed: {type(exc).__name__}")
    return ControlResult(Outcome.DONE)


class CallControl:
    """Commands for live calls, carried out here or relayed to the owning process."""

    def __init__(
        self, calls: LiveCalls, *, redis: Redis | None, prefix: str, process_id: str
    ) -> None:
        self.calls = calls
        self.process_id = process_id
        self._redis = redis
        self._prefix = prefix
        self._tasks: list[asyncio.Task[None]] = []
        self._answering: set[asyncio.Task[None]] = set()
        self._pubsub: PubSub | None = None

    def _owner_key(self, session_id: str) -> str:
        return f"{self._prefix}:owner:{session_id}"

    def _channel(self, process_id: str) -> str:
        return f"{self._prefix}:control:{process_id}"

    async def start(self) -> None:
        """Listen for relayed commands and keep this process's calls marked as its own."""
        if self._redis is None or self._tasks:
            return
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(self._channel(self.process_id))
        self._tasks = [
            asyncio.create_task(self._listen(self._pubsub), name="voxline-call-control"),
            asyncio.create_task(self._refresh_forever(), name="voxline-call-owners"),
        ]

    async def claim(self, session_id: str) -> None:
        """Mark the call as this process's (with Redis), so other processes relay to it."""
        if self._redis is not None:
            try:
                await self._redis.set(self._owner_key(session_id), self.process_id, ex=OWNER_TTL_S)
            except Exception as exc:
                logger.warning("could not mark session %s as this process's: %s", session_id, exc)

    async def release(self, session_id: str) -> None:
        if (call := self.calls.get(session_id)) is not None:
            self.calls.remove(session_id, call)
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.delete(self._owner_key(session_id))

    async def act(self, session_id: str, command: Command, argument: str = "") -> ControlResult:
        """Carry out `command` on the live call `session_id`, wherever it runs."""
        local = self.calls.get(session_id)
        if local is not None or self._redis is None:
            return await act_locally(local, command, argument)
        try:
            return await self._relay(self._redis, session_id, command, argument)
        except RedisError as exc:
            logger.warning("relaying %s failed: %s", command, exc)
            return ControlResult(Outcome.UNAVAILABLE, "Redis cannot be reached")

    async def _relay(
        self, redis: Redis, session_id: str, command: Command, argument: str
    ) -> ControlResult:
        owner = await redis.get(self._owner_key(session_id))
        if owner is None:
            return ControlResult(Outcome.NOT_LIVE, "the session is not live on any server process")
        owner_id = owner.decode() if isinstance(owner, bytes) else str(owner)
        if owner_id == self.process_id:
            return await act_locally(None, command, argument)
        request_id = uuid.uuid4().hex
        reply_key = f"{self._prefix}:reply:{request_id}"
        message = json.dumps(
            {"reply": reply_key, "session": session_id, "command": command, "argument": argument}
        )
        if await redis.publish(self._channel(owner_id), message) == 0:
            return ControlResult(
                Outcome.NOT_LIVE, "the server process running the session is not listening"
            )
        reply = await redis.blpop([reply_key], timeout=_REPLY_TIMEOUT_S)
        if reply is None:
            return ControlResult(
                Outcome.NOT_LIVE, "the server process running the session did not answer"
            )
        answer = json.loads(reply[1])
        return ControlResult(Outcome(answer["outcome"]), answer["message"])

    async def _listen(self, pubsub: PubSub) -> None:
        while True:
            try:
                async for message in pubsub.listen():
                    # Each on its own: a slow transfer must not hold up a hang-up.
                    task = asyncio.create_task(self._answer(message["data"]))
                    self._answering.add(task)
                    task.add_done_callback(self._answering.discard)
            except Exception as exc:
                # Redis went away: the client reconnects and subscribes again on next use.
                logger.warning("call commands could not be received: %s", exc)
                await asyncio.sleep(1.0)

    async def _answer(self, data: bytes | str) -> None:
        assert self._redis is not None
        try:
            request = json.loads(data)
            result = await act_locally(
                self.calls.get(request["session"]), request["command"], request["argument"]
            )
            answer = json.dumps({"outcome": result.outcome.value, "message": result.message})
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.rpush(request["reply"], answer)
                pipe.expire(request["reply"], int(_REPLY_TIMEOUT_S) * 3)
                await pipe.execute()
        except Exception:
            logger.exception("a relayed call command failed")

    async def _refresh_forever(self) -> None:
        assert self._redis is not None
        while True:
            await asyncio.sleep(_REFRESH_S)
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for session_id in self.calls.session_ids():
                        pipe.set(self._owner_key(session_id), self.process_id, ex=OWNER_TTL_S)
                    await pipe.execute()
            except Exception as exc:
                logger.warning("could not refresh the marks of this process's calls: %s", exc)

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
