"""What the caller gives the call: speech turns, keypad digits and typed text.

`CallerInput` turns each into a caller message committed to the conversation and has the
agent answer it. Speech is the subtle one: caller speech over the agent interrupts it; a
reply is prepared speculatively as soon as a paused turn's text is known and promoted if the
confirmed turn says the same; an interruption that brings no words is false, and the agent
resumes what it had not said.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Literal, Protocol

from voxline.agent_spec import TurnTaking
from voxline.providers.base import (
    ChatMessage,
    SpeechEvent,
    SpeechEventSource,
    SttSession,
    Transcript,
)
from voxline.runtime.backchannels import Backchannels
from voxline.runtime.caller_speech import CallerSpeech, CallerTurn
from voxline.runtime.context import Conversation
from voxline.runtime.dtmf import DtmfCollector, keypad_text
from voxline.runtime.events import TranscriptFinal, TranscriptPartial
from voxline.runtime.floor import Floor
from voxline.runtime.journal import Journal
from voxline.runtime.listener import CallerAudio
from voxline.runtime.metrics import TurnTiming
from voxline.runtime.overlap import Overlap
from voxline.runtime.phase import CallLifecycle
from voxline.runtime.tasks import Timer
from voxline.runtime.transport import AudioIn
from voxline.runtime.turns import PauseDetected, SpeechResumed, SpeechStarted, TurnEnded, TurnEvent

logger = logging.getLogger(__name__)


class Agent(Protocol):
    """What caller input asks of the agent (the runtime)."""

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]: ...

    def caller_active(self) -> None:
        """The caller is doing something: no idle re-prompt now."""

    def caller_took_turn(self) -> None:
        """A caller message was committed."""

    async def reply(self, *, turn: int | None = None, timing: TurnTiming | None = None) -> None:
        """Answer the caller message just committed."""

    def speculate(self, text: str) -> None:
        """Prepare the answer to `text` behind a closed gate."""

    async def apologize(self) -> None: ...

    async def resume_speaking(self) -> None:
        """Say what the caller did not hear of the interrupted message."""

    def update_idle(self) -> None: ...


class CallerInput:
    """One call's caller side; `speech` (audio to turns) is fed from `audio`."""

    def __init__(
        self,
        agent: Agent,
        audio: CallerAudio,
        turn_taking: TurnTaking,
        *,
        pause_ms: float,
        stt_rate: int,
        clock: Callable[[], float],
        floor: Floor,
        lifecycle: CallLifecycle,
        journal: Journal,
        conversation: Conversation,
        backchannels: Backchannels,
        keypad_timeout_s: float,
    ) -> None:
        self._agent = agent
        self.speech = CallerSpeech(
            turn_taking, audio, pause_ms=pause_ms, stt_rate=stt_rate, owner=self, clock=clock
        )
        self._floor = floor
        self._lifecycle = lifecycle
        self._journal = journal
        self._conversation = conversation
        self._overlap = Overlap(
            turn_taking.interruptions,
            backchannels,
            floor=floor,
            speech=self.speech,
            journal=journal,
            spawn=agent.spawn,
        )
        self._keypad = DtmfCollector()
        self._keypad_timer = Timer(self.on_keypad_timeout)
        self._keypad_timeout_s = keypad_timeout_s
        self._turns = 0
        self.timers = (self._keypad_timer, self._overlap.peek_timer, self._overlap.limit_timer)
        """The caller side's timers (the runtime binds them to the call's tasks)."""

    @property
    def idle(self) -> bool:
        """The caller is neither speaking nor keying a sequence in."""
        return self.speech.idle and not self._keypad.pending

    # --- speech -----------------------------------------------------------------------------

    async def listen(self, stt: SttSession) -> None:
        """Feed the call's recognizer until the call ends, relaying its interim transcripts
        and acting on its own end-of-utterance cues."""
        self._agent.spawn(self._relay_interim(stt.interim()))
        if isinstance(stt, SpeechEventSource):
            self._agent.spawn(self._follow_speech_events(stt.events()))
        await self.speech.stt.serve(stt)

    async def _relay_interim(self, interim: AsyncIterator[Transcript]) -> None:
        try:
            async for transcript in interim:
                if transcript.text.strip():
                    self._journal.emit(TranscriptPartial(text=transcript.text))
        except Exception as exc:
            logger.debug("interim transcripts stopped: %s", exc)

    async def _follow_speech_events(self, events: AsyncIterator[SpeechEvent]) -> None:
        try:
            async for event in events:
                if event.kind == "utterance_end" and not self._lifecycle.closing:
                    self.speech.utterance_end(event.at_s)
        except Exception as exc:
            logger.debug("speech events stopped: %s", exc)

    async def on_audio(self, audio: AudioIn) -> None:
        if self._lifecycle.closing:
            return
        try:
            probabilities = self.speech.hear(audio.pcm, audio.mulaw)
        except ValueError as exc:
            logger.warning("dropped bad caller audio: %s", exc)
            return
        for probability in probabilities:
            for event in self.speech.window(probability, agent_speaking=self._floor.busy):
                await self._on_turn_event(event)

    async def _on_turn_event(self, event: TurnEvent) -> None:
        speech = self.speech
        if isinstance(event, SpeechStarted):
            self._agent.caller_active()
            over_agent = self._floor.can_interrupt()
            listen = over_agent and self._overlap.applies()
            if over_agent and not listen:
                await self._floor.interrupt(resume=True)
            if speech.turn is not None:
                self._floor.drop_speculative()  # the caller went on after the endpoint
            speech.start(event.voiced_ms)
            if listen:
                self._overlap.begin(event.voiced_ms)
        elif isinstance(event, SpeechResumed):
            self._floor.drop_speculative()
            speech.open_segment(event.voiced_ms)
            self._overlap.resumed()
        elif isinstance(event, PauseDetected):
            self._overlap.at_pause()
            speech.transcribe()
        elif isinstance(event, TurnEnded):
            speech.end()

    def transcript_ready(self, turn: CallerTurn, text: str) -> None:
        """`TurnOwner`: prepare the answer to `text` while the caller pauses."""
        if self._overlap.pending:
            self._agent.spawn(self._settle_then_speculate(text))
        elif self._floor.speculative is None and not self._lifecycle.closing:
            self._agent.speculate(text)

    async def _settle_then_speculate(self, text: str) -> None:
        if not await self._overlap.settle(text) and self.speech.turn is not None:
            self.transcript_ready(self.speech.turn, text)

    def turn_ended(self, turn: CallerTurn, revision: int) -> None:
        """`TurnOwner`: answer the turn once it is transcribed."""
        self._agent.spawn(self._confirm(turn, revision))

    async def _confirm(self, turn: CallerTurn, revision: int) -> None:
        """Commit an ended turn once transcribed, and answer it."""
        results = await asyncio.gather(*turn.finals, return_exceptions=True)
        speech = self.speech
        if turn is not speech.turn or turn.revision != revision or self._lifecycle.closing:
            return
        speech.take(turn)
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        text = turn.text()
        floor = self._floor
        if await self._overlap.settle(text):
            self._agent.update_idle()
            return
        if failure is not None:
            logger.warning("speech recognition failed: %s", failure)
            floor.drop_speculative()
            await self._agent.apologize()
            return
        if not text:
            floor.drop_speculative()
            if floor.resume is not None:
                await self._agent.resume_speaking()  # the interruption brought no words
            self._agent.update_idle()
            return
        await floor.take()  # (an answer still playing when interruptions are off)
        floor.forget_resume()
        self._commit(text, source="speech")
        self._turns += 1
        if not floor.promote(text, self._turns, turn.timing):
            await self._agent.reply(turn=self._turns, timing=turn.timing)

    async def on_false_interruption(self) -> None:
        """The interruption's timeout passed: resume unless the caller has words to say."""
        speech = self.speech
        turn = speech.turn
        if self._floor.resume is None or self._lifecycle.closing:
            return
        if turn is not None and (speech.speaking or not turn.transcribed() or turn.text()):
            return  # words came, or may still come: the turn's confirmation decides
        if turn is not None:
            self.discard_turn()
        await self._agent.resume_speaking()

    def discard_turn(self) -> None:
        """Forget the caller's turn in progress (its audio is transcribed and dropped)."""
        self._overlap.drop()
        self.speech.discard()
        self._floor.drop_speculative()

    async def on_interrupt(self) -> None:
        """The client asked the agent to stop (an explicit interrupt)."""
        self._overlap.drop()
        if self._floor.can_interrupt(explicit=True):
            await self._floor.interrupt(resume=False)

    # --- keypad and text --------------------------------------------------------------------

    async def on_dtmf(self, digit: str) -> None:
        if self._lifecycle.closing:
            return
        try:
            sequence = self._keypad.add(digit)
        except ValueError as exc:
            logger.warning("ignored keypad input: %s", exc)
            return
        self._agent.caller_active()
        self._overlap.drop()
        if self._floor.can_interrupt(explicit=True):
            await self._floor.interrupt(resume=False)
        if sequence is None:
            self._keypad_timer.start(self._keypad_timeout_s)
            return
        await self._on_sequence(sequence)

    async def on_keypad_timeout(self) -> None:
        """The caller stopped pressing keys: the digits so far are one input."""
        sequence = self._keypad.flush()
        if sequence is not None and not self._lifecycle.closing:
            await self._on_sequence(sequence)
        self._agent.update_idle()

    async def _on_sequence(self, sequence: str) -> None:
        self._keypad_timer.cancel()
        self._floor.drop_speculative()
        await self._floor.take()
        self._journal.record(self._journal.new_item("dtmf", sequence))
        self._agent.caller_took_turn()
        self._conversation.add(ChatMessage(role="user", content=keypad_text(sequence)))
        await self._agent.reply()

    async def on_text(self, text: str) -> None:
        text = text.strip()
        if not text or self._lifecycle.closing:
            return
        self._agent.caller_active()
        self._overlap.drop()
        self._floor.drop_speculative()
        await self._floor.take()
        self._commit(text, source="text")
        await self._agent.reply()

    def _commit(self, text: str, *, source: Literal["speech", "text"]) -> None:
        self._agent.caller_took_turn()
        self._journal.record(self._journal.new_item("caller", text, source=source))
        self._journal.emit(TranscriptFinal(text=text, source=source))
        self._conversation.add(ChatMessage(role="user", content=text))
