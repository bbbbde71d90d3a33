"""The calls this process is holding right now, by session ID, each with a small handle
that acts on the running conversation: a machine verdict ends it or leaves a message, a drain
says goodbye, an operator hangs up, transfers or has a line said (`live/control.py`)."""

from __future__ import annotations

from typing import Protocol

from voxline.runtime.phase import EndReason


class LiveCall(Protocol):
    async def hang_up_now(self, reason: EndReason) -> bool:
        """End the call now; False if it is not running (not started yet, or over)."""
        ...

    async def say_then_hang_up(self, text: str, reason: EndReason) -> bool:
        """Cut off whatever is playing, speak `text`, then hang up (a call already saying
        goodbye goes on as it was); False if not running."""
        ...

    async def transfer_now(self, number: str) -> None:
        """Hand the line to `number`; raises if this call cannot be transferred."""
        ...

    async def say_now(self, text: str) -> bool:
        """Speak `text` next, cutting short what is playing; False if the call is ending."""
        ...


class LiveCalls:
    """Per process. The call engine adds each call for as long as its conversation runs."""

    def __init__(self) -> None:
        self._calls: dict[str, LiveCall] = {}

    def add(self, session_id: str, call: LiveCall) -> None:
        self._calls[session_id] = call

    def remove(self, session_id: str, call: LiveCall) -> None:
        if self._calls.get(session_id) is call:
            del self._calls[session_id]

    def get(self, session_id: str) -> LiveCall | None:
        return self._calls.get(session_id)

    def session_ids(self) -> list[str]:
        return list(self._calls)

    def calls(self) -> list[LiveCall]:
        return list(self._calls.values())

    def __len__(self) -> int:
        return len(self._calls)
