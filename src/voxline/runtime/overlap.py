"""Caller speech over the agent: a backchannel (the agent goes on) or a barge-in (it stops).

When the caller starts speaking while the agent's answer plays, the agent does not stop at
once: it lowers its voice (`listening_volume`; audio is sent only ~200 ms ahead, so this is
heard within a fraction of a second) and listens. Its recognizer peeks at the words so far
right away and every `peek_interval_ms` while the caller speaks:
- real words ("Sorry, can I...", "Wait", "No") are a barge-in: the agent stops at once; a
  word or two that are neither cues nor acknowledgements (a quick peek mishears "sure" as
  "your", a hum as "and then one") wait for more words;
- speech longer than `backchannel_max_ms` is a barge-in whatever it says;
- when the caller pauses, a peek at the whole utterance decides: a backchannel ("yeah",
  "okay", "mm-hmm": `runtime/backchannels.py`), or a word or two that stayed short, is
  recorded as a backchannel and the agent speaks on at full voice, having never stopped;
  words stop it. No words yet (a cough, a recognizer that cannot peek): the turn's
  transcript decides when it comes, the same way.
The trade-off: a barge-in that opens with a cue ("sorry", "wait", "no", "can", "what"...) is
decided once the caller has spoken `min_speech_ms` plus one peek (~50 ms on a CPU); one that
starts like a backchannel ("Yeah, but...") or without a cue when its third word is heard, or
at `backchannel_max_ms`; a word or two said over the agent and no more ("Tuesday.") is taken
for a backchannel. A backchannel costs the caller nothing but a softer agent for a moment.
A backchannel overlapping the end of the agent's answer is a caller turn as usual.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from voxline.agent_spec import Interruptions
from voxline.runtime.backchannels import Backchannels, Said
from voxline.runtime.caller_speech import CallerSpeech
from voxline.runtime.events import TranscriptBackchannel
from voxline.runtime.floor import Floor
from voxline.runtime.journal import Journal
from voxline.runtime.tasks import Timer

logger = logging.getLogger(__name__)

_RECHECK_S = 0.06
"""At the length limit in a silent window: look again this much later."""


@dataclass(eq=False, slots=True)
class _Listening:
    """One stretch of caller speech over the agent, until it is settled."""

    text: str = ""
    """The words heard so far (the latest peek's)."""


class Overlap:
    """One call's judge of caller speech over the agent (see the module)."""

    def __init__(
        self,
        interruptions: Interruptions,
        backchannels: Backchannels,
        *,
        floor: Floor,
        speech: CallerSpeech,
        journal: Journal,
        spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]],
    ) -> None:
        self._interruptions = interruptions
        self._backchannels = backchannels
        self._floor = floor
        self._speech = speech
        self._journal = journal
        self._spawn = spawn
        self._current: _Listening | None = None
        self.peek_timer = Timer(self._peek_again)
        self.limit_timer = Timer(self._over_limit)

    @property
    def pending(self) -> bool:
        """Caller speech over the agent is being judged."""
        return self._current is not None

    def applies(self) -> bool:
        """Whether caller speech starting now should be listened to before stopping the agent
        (an answer is being spoken and the agent tells backchannels)."""
        return self._interruptions.backchannels and self._floor.active is not None

    def begin(self, voiced_ms: float) -> None:
        """Caller speech began over the agent (its segment is open): listen, lowered."""
        current = _Listening()
        self._current = current
        self._floor.listen(self._interruptions.listening_volume)
        left_ms = max(self._interruptions.backchannel_max_ms - voiced_ms, 0.0)
        self.limit_timer.start(left_ms / 1000)
        self._spawn(self._peek(current, self._speech.stt.peek()))

    def at_pause(self) -> None:
        """The caller paused: peek at the whole utterance (call before its segment closes)."""
        current = self._current
        if current is not None:
            self.peek_timer.cancel()
            self._spawn(self._decide(current, self._speech.stt.peek()))

    def resumed(self) -> None:
        """The caller spoke on after a short pause: keep peeking."""
        if self._current is not None:
            self.peek_timer.start(self._interruptions.peek_interval_ms / 1000)

    async def settle(self, text: str) -> bool:
        """The turn's transcript is known (if caller speech over the agent was pending): words
        stop the agent, nothing lets it speak on, and a backchannel (or a word or two that
        stayed short: hums are heard as words) is recorded as one; True then, and the turn is
        dropped (not an LLM turn)."""
        if self._current is None:
            return False
        said = self._backchannels.classify(text)
        if said in (Said.BACKCHANNEL, Said.UNSURE):
            return self._backchannel(text)
        if said is Said.NOTHING:
            self.drop()
        else:
            await self.barge_in()
        return False

    async def barge_in(self) -> None:
        """It is a barge-in: stop the agent now (what it had not said may still resume if the
        interruption turns out to bring no words)."""
        self.drop()
        if self._floor.can_interrupt():
            await self._floor.interrupt(resume=True)

    def drop(self) -> None:
        """Stop judging; the agent speaks on at full voice."""
        self._current = None
        self.peek_timer.cancel()
        self.limit_timer.cancel()
        self._floor.speak_on()

    async def _peek(self, current: _Listening, words: asyncio.Future[str | None]) -> None:
        text = await words
        if current is not self._current or text is None:
            return
        current.text = text or current.text
        if self._backchannels.classify(text) is Said.WORDS:
            await self.barge_in()
        elif self._speech.speaking:
            self.peek_timer.start(self._interruptions.peek_interval_ms / 1000)

    async def _peek_again(self) -> None:
        current = self._current
        if current is not None and self._speech.speaking:
            await self._peek(current, self._speech.stt.peek())

    async def _decide(self, current: _Listening, words: asyncio.Future[str | None]) -> None:
        text = await words
        if current is not self._current or text is None:
            return  # settled meanwhile, or the recognizer cannot peek: the transcript decides
        said = self._backchannels.classify(text)
        if said is Said.WORDS:
            await self.barge_in()
        elif said in (Said.BACKCHANNEL, Said.UNSURE):
            self._backchannel(text)

    async def _over_limit(self) -> None:
        if self._current is None or not self._speech.speaking:
            return
        if self._speech.voiced:
            await self.barge_in()
        else:
            # The caller may have just stopped: let the pause decide, unless they go on.
            self.limit_timer.start(_RECHECK_S)

    def _backchannel(self, text: str) -> bool:
        if not self._floor.busy:
            self.drop()  # the answer ended meanwhile: it is the caller's turn after all
            return False
        self.drop()
        self._speech.discard()
        words = text.strip()
        journal = self._journal
        journal.record(journal.new_item("caller", words, source="speech", backchannel=True))
        journal.emit(TranscriptBackchannel(text=words))
        return True
