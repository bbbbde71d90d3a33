"""Who holds the floor, and how interruptions resolve.

The agent holds the floor while its active response runs or its audio is still playing. A
speculative reply may wait behind its gate for the caller's turn to be confirmed; it is
promoted if it answers exactly what the caller said, else dropped. When caller speech
interrupts the agent (barge-in) the floor is cleared at once and what the caller did not
hear is kept as `resume`, until the interruption proves real (words came: it is dropped) or
false (no words within the timeout: the agent says the rest).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from voxline.agent_spec import Interruptions
from voxline.runtime.metrics import TurnTiming
from voxline.runtime.phase import CallLifecycle, EndReason
from voxline.runtime.playout import Playout
from voxline.runtime.response import Response
from voxline.runtime.tasks import Timer


@dataclass(eq=False, slots=True)
class Running:
    """A response and the task running it."""

    response: Response
    task: asyncio.Task[None] | None = None
    answers: str = ""
    """The caller text a speculative response answers."""
    end_reason: EndReason | None = None
    """Hang up with this reason once it has been heard."""

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()


class Floor:
    """`run` runs a response as a call task (the runtime's, which acts on how it ended);
    `false_interruption` runs when an interruption yielded no words in time."""

    def __init__(
        self,
        playout: Playout,
        interruptions: Interruptions,
        lifecycle: CallLifecycle,
        *,
        run: Callable[[Running], asyncio.Task[None]],
        false_interruption: Callable[[], Coroutine[Any, Any, None]],
    ) -> None:
        self._playout = playout
        self._interruptions = interruptions
        self._lifecycle = lifecycle
        self._run = run
        self.active: Running | None = None
        self.speculative: Running | None = None
        self.resume: str | None = None
        """What the agent had not said when interrupted, until the interruption proves real."""
        self.false_interruption = Timer(false_interruption)
        self._listening = False

    @property
    def busy(self) -> bool:
        """The agent is speaking: a response runs or its audio is still playing."""
        return self.active is not None or self._playout.busy

    @property
    def idle(self) -> bool:
        """Nothing is said, prepared or waiting to be resumed."""
        return not (self.busy or self.speculative is not None or self.resume is not None)

    def can_interrupt(self, *, explicit: bool = False) -> bool:
        """Whether caller input may cut the agent off now; `explicit` input (keypad, a
        client's interrupt) does so even when speech interruptions are disabled."""
        if self._lifecycle.closing or not (explicit or self._interruptions.enabled):
            return False
        return self.busy

    @property
    def listening(self) -> bool:
        """The agent speaks on, lowered, while it decides whether the caller takes the turn."""
        return self._listening

    def listen(self, volume: float) -> None:
        """Caller speech over the agent, not yet known to be a barge-in: speak on, lowered."""
        self._listening = True
        self._playout.volume = volume

    def speak_on(self) -> None:
        """The caller's speech was not a barge-in (or was settled): back to full voice."""
        self._listening = False
        self._playout.volume = 1.0

    async def take(self) -> None:
        """Make sure the agent is silent before it starts something new."""
        if self.busy:
            await self.interrupt(resume=False)

    async def begin(self, running: Running) -> None:
        """Take the floor and start `running`."""
        await self.take()
        self.speak_on()
        self.active = running
        running.task = self._run(running)

    def done(self, running: Running) -> None:
        """`running` finished on its own."""
        if self.active is running:
            self.active = None

    async def interrupt(self, *, resume: bool) -> None:
        """Barge-in: silence the agent now and keep only what the caller heard; with `resume`
        the unheard rest waits for the interruption to prove real or false."""
        running, self.active = self.active, None
        if running is not None:
            running.cancel()
        self.speak_on()
        await self._playout.clear()
        if running is None:
            return
        unheard = running.response.interrupted()
        self.forget_resume()
        if resume and unheard and self._interruptions.resume_after_false_interruption:
            self.resume = unheard
            self.false_interruption.start(self._interruptions.false_interruption_timeout_ms / 1000)

    def forget_resume(self) -> None:
        """The interruption was real: the unheard rest is dropped."""
        self.resume = None
        self.false_interruption.cancel()

    def take_resume(self) -> str | None:
        """The unheard rest, to be said now (the interruption was false)."""
        text = self.resume
        self.forget_resume()
        return text

    def speculate(self, running: Running) -> None:
        """Prepare `running` (gate closed) as the answer to `running.answers`."""
        self.drop_speculative()
        running.task = self._run(running)
        self.speculative = running

    def drop_speculative(self) -> None:
        speculative, self.speculative = self.speculative, None
        if speculative is not None:
            speculative.cancel()

    def promote(self, text: str, turn: int, timing: TurnTiming) -> bool:
        """Let the speculative reply be heard if it answers exactly `text` (and still runs);
        True if it now holds the floor. Otherwise it is dropped."""
        speculative, self.speculative = self.speculative, None
        if speculative is None:
            return False
        if speculative.answers != text or speculative.task is None or speculative.task.done():
            speculative.cancel()
            return False
        speculative.response.confirm(turn, timing)
        self.active = speculative
        return True

    def settle(self) -> None:
        """The call ended mid-answer (the caller hung up): record what was heard of it."""
        running, self.active = self.active, None
        if running is not None and running.response.spoken:
            running.response.interrupted()
