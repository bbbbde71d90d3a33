"""A call's background work: tasks in its task group and its timers, none outliving it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

Action = Callable[[], Coroutine[Any, Any, None]]


class CallTasks:
    """Spawns the call's tasks into its task group; once `over()` is true nothing new starts
    (a spawn returns an already-cancelled task)."""

    def __init__(self, group: asyncio.TaskGroup, over: Callable[[], bool]) -> None:
        self._group = group
        self._over = over
        self._running: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = self._group.create_task(coro)
        if self._over():
            task.cancel()
            return task
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    def cancel_all(self) -> None:
        for task in list(self._running):
            task.cancel()


class Timer:
    """Runs `action` as a call task `delay` seconds after `start` (a new `start` re-arms it);
    does nothing once the call is over."""

    def __init__(self, action: Action) -> None:
        self._action = action
        self._handle: asyncio.TimerHandle | None = None
        self._tasks: CallTasks | None = None

    def bind(self, tasks: CallTasks) -> None:
        """Where the action runs (the call's task group, known once the call runs)."""
        self._tasks = tasks

    @property
    def pending(self) -> bool:
        return self._handle is not None

    def start(self, delay: float) -> None:
        self.cancel()
        self._handle = asyncio.get_running_loop().call_later(delay, self._fire)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        self._handle = None
        if self._tasks is not None:
            self._tasks.spawn(self._action())
