"""`EventHub`: the process's live call events, for Server-Sent Events from any process.

Each call's events go to a bounded log of its own (`session:<id>`) and its start and end to
its workspace's log (`workspace:<id>`). Alone, a process keeps the logs in memory; with Redis
(`RedisLog`) they are Redis Streams (`XADD ... MAXLEN ~`), so a client of any process reads a
call living on another. Entry IDs have the Redis form (`<ms>-<n>`) on both, so a client's
`Last-Event-ID` resumes where it stopped; reading from no ID replays the short history kept.
Publishing never blocks a call: entries are queued and appended in order by one task.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import deque
from dataclasses import dataclass
from typing import Protocol, cast

from redis.asyncio import Redis

from voxline.runtime.events import CallEvent, SessionEnded, SessionStarted

logger = logging.getLogger(__name__)

ENTRY_ID_PATTERN = r"^\d{1,20}-\d{1,20}$"
"""An event's ID: `<ms>-<n>`, as Redis Streams number their entries."""
_ENTRY_ID = re.compile(ENTRY_ID_PATTERN)
_KEEP_ENDED_S = 3600
"""How long a finished call's log stays readable."""


@dataclass(frozen=True, slots=True)
class LiveEntry:
    """One entry of a log: its ID and its JSON."""

    id: str
    data: str


def is_entry_id(value: str) -> bool:
    """Whether `value` has the form of an entry ID (`<ms>-<n>`)."""
    return _ENTRY_ID.fullmatch(value) is not None


def _key(entry_id: str) -> tuple[int, int]:
    ms, n = entry_id.split("-")
    return int(ms), int(n)


class EventLog(Protocol):
    async def append(self, key: str, data: str) -> None:
        """Add `data` at the end of the log `key` (created on first use, bounded)."""

    async def read(self, key: str, after: str | None, timeout_s: float) -> list[LiveEntry]:
        """The entries after `after` (from the start of the history when None), waiting up to
        `timeout_s` for one to come; [] if none did. It may return only the first of them:
        read again after the last one returned."""

    async def expire(self, key: str, after_s: int) -> None:
        """Forget the log `key` `after_s` seconds from now."""

    async def aclose(self) -> None: ...


class MemoryLog:
    """Logs of this process alone, each the last `max_len` entries."""

    def __init__(self, max_len: int) -> None:
        self._max_len = max_len
        self._logs: dict[str, deque[LiveEntry]] = {}
        self._changed: dict[str, asyncio.Event] = {}
        self._counter = 0
        self._expiries: dict[str, asyncio.TimerHandle] = {}

    async def append(self, key: str, data: str) -> None:
        self._counter += 1
        log = self._logs.setdefault(key, deque(maxlen=self._max_len))
        log.append(LiveEntry(f"{self._counter}-0", data))
        changed = self._changed.pop(key, None)
        if changed is not None:
            changed.set()

    async def read(self, key: str, after: str | None, timeout_s: float) -> list[LiveEntry]:
        entries = self._after(key, after)
        if entries or timeout_s <= 0:
            return entries
        changed = self._changed.setdefault(key, asyncio.Event())
        try:
            await asyncio.wait_for(changed.wait(), timeout_s)
        except TimeoutError:
            return []
        return self._after(key, after)

    def _after(self, key: str, after: str | None) -> list[LiveEntry]:
        log = self._logs.get(key, ())
        if after is None:
            return list(log)
        start = _key(after)
        return [entry for entry in log if _key(entry.id) > start]

    async def expire(self, key: str, after_s: int) -> None:
        previous = self._expiries.pop(key, None)
        if previous is not None:
            previous.cancel()
        loop = asyncio.get_running_loop()
        self._expiries[key] = loop.call_later(after_s, self._forget, key)

    def _forget(self, key: str) -> None:
        self._logs.pop(key, None)
        self._expiries.pop(key, None)

    async def aclose(self) -> None:
        for handle in self._expiries.values():
            handle.cancel()
        self._expiries.clear()


class RedisLog:
    """Logs as Redis Streams under `prefix`, each trimmed to about `max_len` entries."""

    def __init__(self, redis: Redis, prefix: str, max_len: int) -> None:
        self._redis = redis
        self._prefix = prefix
        self._max_len = max_len

    def _name(self, key: str) -> str:
        return f"{self._prefix}:events:{key}"

    async def append(self, key: str, data: str) -> None:
        name = self._name(key)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xadd(name, {"data": data}, maxlen=self._max_len, approximate=True)
            # A stream is kept a while after its last entry, then forgotten.
            pipe.expire(name, _KEEP_ENDED_S * 24)
            await pipe.execute()

    async def read(self, key: str, after: str | None, timeout_s: float) -> list[LiveEntry]:
        block = None if timeout_s <= 0 else max(1, int(timeout_s * 1000))
        reply = cast(
            _XReadReply,
            await self._redis.xread(
                {self._name(key): after or "0-0"}, count=self._max_len, block=block
            ),
        )
        entries = []
        for _stream, items in reply or ():
            for entry_id, fields in items:
                entries.append(LiveEntry(_text(entry_id), _text(fields[b"data"])))
        return entries

    async def expire(self, key: str, after_s: int) -> None:
        await self._redis.expire(self._name(key), after_s)

    async def aclose(self) -> None:
        """The Redis client is its owner's to close."""


_XReadReply = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def session_key(session_id: str) -> str:
    return f"session:{session_id}"


def workspace_key(workspace_id: str) -> str:
    return f"workspace:{workspace_id}"


class EventHub:
    """Publishes calls' events to their logs, in order, without blocking the calls."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self._queue: asyncio.Queue[tuple[str, str, int | None] | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    def publish(self, workspace_id: str, session_id: str, event: CallEvent) -> None:
        """Queue `event` of a call for its session's log (and its workspace's, for a start
        or an end); returns at once."""
        data = event.model_dump_json(by_alias=True)
        key = session_key(session_id)
        ended = isinstance(event, SessionEnded)
        self._put(key, data, _KEEP_ENDED_S if ended else None)
        if isinstance(event, SessionStarted | SessionEnded):
            summary = {"sessionId": session_id, **event.model_dump(mode="json", by_alias=True)}
            self._put(workspace_key(workspace_id), json.dumps(summary, separators=(",", ":")), None)

    def _put(self, key: str, data: str, expire_s: int | None) -> None:
        if self._writer is None:
            self._writer = asyncio.create_task(self._write(), name="voxline-live-events")
        self._queue.put_nowait((key, data, expire_s))

    async def _write(self) -> None:
        while (entry := await self._queue.get()) is not None:
            key, data, expire_s = entry
            try:
                await self.log.append(key, data)
                if expire_s is not None:
                    await self.log.expire(key, expire_s)
            except Exception as exc:
                logger.warning("could not publish a live event to %s: %s", key, exc)

    async def aclose(self) -> None:
        """Publish what is queued, then close the log."""
        if self._writer is not None:
            self._queue.put_nowait(None)
            try:
                await asyncio.wait_for(self._writer, 5.0)
            except TimeoutError:
                logger.warning("live events were still being published at shutdown")
        await self.log.aclose()
