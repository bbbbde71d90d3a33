"""`AgentRuntime`: one spoken conversation, from greeting to hang-up, over any transport.

It joins a few objects that each have one job:
- `CallLifecycle` (`phase.py`): the call's phase (opening, talking, closing, ended) and how
  it ends;
- `CallerSpeech` (`caller_speech.py`): what the caller says, from audio to confirmed turns;
- `Floor` (`floor.py`): who holds the floor, speculative replies, barge-in and resumption;
- `Response` with its producers (`response.py`, `producers.py`): what the agent says;
- `Journal` (`journal.py`): the transcript, metrics and call events, recorded in order.

Everything of a call runs in one task group: the inbound event loop (audio is processed
inline: VAD, turn detection, STT feeding), the STT feeder, the journal writer and the
agent's responses. At a short pause the speech so far is transcribed and a reply prepared
speculatively behind a closed gate, which opens when the turn is confirmed (or the reply is
dropped if the caller goes on). Caller speech over the agent interrupts it (barge-in); an
interruption that yields no words is false and the agent resumes what it had not said.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from voxline.agent_spec import AgentSpec, fill_placeholders
from voxline.providers.base import (
    ChatMessage,
    ProviderError,
    ProviderSet,
    SpeechEvent,
    SpeechEventSource,
    Transcript,
)
from voxline.runtime.caller_speech import CallerSpeech, CallerTurn
from voxline.runtime.context import Conversation
from voxline.runtime.dtmf import DtmfCollector, keypad_text
from voxline.runtime.events import SessionEnded, TranscriptFinal, TranscriptPartial
from voxline.runtime.floor import Floor, Running
from voxline.runtime.journal import EventObserver, Journal
from voxline.runtime.line_cache import SHARED_CACHE, LineCache, VoiceLines
from voxline.runtime.listener import CallerAudio
from voxline.runtime.metrics import TurnTiming
from voxline.runtime.options import RuntimeOptions
from voxline.runtime.phase import CallLifecycle, CallPhase, EndReason
from voxline.runtime.playout import Playout, PlayoutError
from voxline.runtime.preparation import prefill_llm, warm_fixed_lines
from voxline.runtime.producers import FixedLine, LlmReply
from voxline.runtime.provider_connections import ProviderConnections
from voxline.runtime.recording import CallRecorder
from voxline.runtime.response import Response, ResponseDeps, split_clauses
from voxline.runtime.tasks import CallTasks, Timer
from voxline.runtime.transport import (
    AudioIn,
    DtmfIn,
    HangupIn,
    InterruptIn,
    MarkPlayed,
    TextIn,
    Transport,
)
from voxline.runtime.turns import (
    PauseDetected,
    SpeechResumed,
    SpeechStarted,
    TurnEnded,
    TurnEvent,
)
from voxline.tools import EndCall, ToolRunner, Transfer

logger = logging.getLogger(__name__)

__all__ = ["AgentRuntime", "CallOutcome", "EndReason"]

_NO_VARIABLES: Mapping[str, str] = MappingProxyType({})
_JOURNAL_DRAIN_S = 10.0
_CLOSE_CONNECTIONS_S = 5.0


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """How a call ended. `first_response_ms`: first agent audio sent minus `run()` start."""

    end_reason: EndReason
    first_response_ms: float | None
    duration_ms: int
    error: str | None = None


class AgentRuntime:
    """Holds one conversation; knows no transport beyond the `Transport` protocol.

    `run()` returns when the call is over and never raises for the call's own failures
    (a provider error mid-turn is answered with the agent's apology and the call goes on).
    `line_cache` defaults to the process-wide cache. `clock` must advance in real time;
    it only stamps measurements. `observers` see every call event as it is emitted.
    """

    def __init__(
        self,
        spec: AgentSpec,
        providers: ProviderSet,
        transport: Transport,
        recorder: CallRecorder,
        *,
        tools: ToolRunner,
        variables: Mapping[str, str] = _NO_VARIABLES,
        memory: Sequence[str] = (),
        line_cache: LineCache | None = None,
        clock: Callable[[], float] = time.monotonic,
        options: RuntimeOptions | None = None,
        observers: Sequence[EventObserver] = (),
    ) -> None:
        options = options if options is not None else RuntimeOptions()
        tt = spec.turn_taking
        variables = dict(variables)
        self._spec = spec
        self._transport = transport
        self._tools = tools
        self._clock = clock
        self._options = options
        self._limits = spec.limits
        self._greeting = fill_placeholders(spec.first_message or "", variables).strip()
        self._started_at = clock()
        self._ran = False
        self._lifecycle = CallLifecycle()
        self._tasks: CallTasks | None = None
        self._journal = Journal(
            recorder, transport, clock=clock, started_at=self._started_at, observers=observers
        )
        self._connections = ProviderConnections(
            providers, input_rate=transport.input_rate, output_rate=transport.output_rate
        )
        self._playout = Playout(
            transport,
            clock=clock,
            lead_ms=options.playout_lead_ms,
            chunk_ms=options.playout_chunk_ms,
        )
        self._conversation = Conversation(
            fill_placeholders(spec.system_prompt, variables),
            tuple(memory),
            budget_chars=options.history_budget_chars,
        )
        cache = line_cache if line_cache is not None else SHARED_CACHE
        self._lines = VoiceLines(cache, spec.tts.model_dump_json(), transport.output_rate)
        self._floor = Floor(
            self._playout,
            tt.interruptions,
            self._lifecycle,
            run=self._start_running,
            false_interruption=self._on_false_interruption,
        )
        self._deps = ResponseDeps(
            conversation=self._conversation,
            playout=self._playout,
            journal=self._journal,
            connections=self._connections,
            tools=tools,
            lines=self._lines,
            limits=self._limits,
            lifecycle=self._lifecycle,
            clock=clock,
            transfer=self._transfer,
            tool_filler_after_s=options.tool_filler_after_s,
            max_tool_rounds=options.max_tool_rounds,
        )
        self._dtmf = DtmfCollector()
        self._idle = Timer(self._on_idle)
        self._dtmf_done = Timer(self._on_dtmf_timeout)
        self._max_duration = Timer(self._on_max_duration)
        self._timers = (
            self._idle,
            self._dtmf_done,
            self._max_duration,
            self._floor.false_interruption,
        )
        self._caller: CallerSpeech | None = None
        self._labels = 0
        self._turns = 0
        self._reprompts = 0

    # --- lifecycle --------------------------------------------------------------------------

    async def run(self) -> CallOutcome:
        """Hold the conversation until the call ends; how it ended."""
        if self._ran:
            raise RuntimeError("an AgentRuntime runs one call; create a new one")
        self._ran = True
        self._started_at = self._clock()
        self._journal.begin(self._started_at)
        journal_task = asyncio.ensure_future(self._journal.run())
        lifecycle = self._lifecycle
        try:
            self._caller = self._listen()
            async with asyncio.TaskGroup() as group:
                self._tasks = CallTasks(group, lambda: lifecycle.over)
                for timer in self._timers:
                    timer.bind(self._tasks)
                self._tasks.spawn(self._consume())
                self._tasks.spawn(self._open_call())
                self._max_duration.start(self._limits.max_duration_s)
                await lifecycle.finished.wait()
                self._tasks.cancel_all()
            self._floor.settle()
        except Exception as exc:
            logger.exception("call failed")
            lifecycle.finish("error", f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(Exception):
                await self._transport.hang_up()
        finally:
            for timer in self._timers:
                timer.cancel()
            try:
                await asyncio.wait_for(self._connections.aclose(), _CLOSE_CONNECTIONS_S)
            except TimeoutError:
                logger.warning("provider connections did not close in time")
            outcome = self._outcome()
            self._journal.emit(
                SessionEnded(
                    reason=outcome.end_reason,
                    first_response_ms=outcome.first_response_ms,
                    duration_ms=outcome.duration_ms,
                    error=outcome.error,
                )
            )
            self._journal.close()
            try:
                await asyncio.wait_for(journal_task, _JOURNAL_DRAIN_S)
            except TimeoutError:
                logger.warning("the call's record was not fully written in time")
        return outcome

    def _listen(self) -> CallerSpeech:
        tt = self._spec.turn_taking
        audio = CallerAudio(
            self._transport.input_rate,
            self._connections.stt_rate,
            vad=tt.vad,
            max_voiced_ms=max(tt.speech_start_ms, tt.interruptions.min_speech_ms),
            pre_roll_ms=self._options.pre_roll_ms,
            stt_mulaw=self._connections.stt_mulaw,
        )
        return CallerSpeech(
            tt,
            audio,
            pause_ms=self._options.pause_ms,
            stt_rate=self._connections.stt_rate,
            owner=self,
            clock=self._clock,
        )

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        assert self._tasks is not None, "the call is not running"
        return self._tasks.spawn(coro)

    @property
    def _speech(self) -> CallerSpeech:
        assert self._caller is not None, "the call is not running"
        return self._caller

    def _outcome(self) -> CallOutcome:
        end = self._lifecycle.end
        reason, error = (end.reason, end.error) if end is not None else ("caller_hangup", None)
        first_audio = self._playout.first_audio_at
        first_ms = None if first_audio is None else (first_audio - self._started_at) * 1000
        duration_ms = round((self._clock() - self._started_at) * 1000)
        return CallOutcome(reason, first_ms, duration_ms, error)

    async def _hang_up(self, reason: EndReason, error: str | None = None) -> None:
        # Decided before the far end learns of it: its own hang-up that follows is ours.
        self._lifecycle.decide(reason, error)
        try:
            await self._transport.hang_up()
        except Exception as exc:
            logger.warning("hang-up failed: %s", exc)
        self._lifecycle.finish(reason, error)

    async def _transfer(self, number: str) -> None:
        decided = self._lifecycle.decide("transferred")
        try:
            await self._transport.transfer(number)
        except BaseException:
            if decided:
                self._lifecycle.undecide()
            raise

    # --- opening the call -------------------------------------------------------------------

    async def _open_call(self) -> None:
        """Greet first; providers connect while the greeting plays, never before it."""
        greeting = self._greeting
        # A caller who typed (or keyed) before the greeting began is answered instead.
        if greeting and self._floor.active is None:
            if any(self._lines.get(clause) is None for clause in split_clauses(greeting)):
                self._connections.start_tts()
            running = await self._say(greeting, kind="greeting")
            audible = asyncio.ensure_future(self._playout.audible.wait())
            assert running.task is not None
            try:
                await asyncio.wait([audible, running.task], return_when=asyncio.FIRST_COMPLETED)
            finally:
                audible.cancel()
        self._lifecycle.opened()
        self._connections.start()
        self._spawn(self._serve_stt())
        self._spawn(self._watch_connections())
        self._update_idle()

    async def _serve_stt(self) -> None:
        try:
            stt = await self._connections.stt()
        except ProviderError:
            return  # _watch_connections ends the call
        self._spawn(self._relay_interim(stt.interim()))
        if isinstance(stt, SpeechEventSource):
            self._spawn(self._follow_speech_events(stt.events()))
        await self._speech.stt.serve(stt)

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
                    self._speech.utterance_end(event.at_s)
        except Exception as exc:
            logger.debug("speech events stopped: %s", exc)

    async def _watch_connections(self) -> None:
        try:
            await self._connections.tts()
            await self._connections.stt()
            await self._connections.llm()
        except ProviderError as exc:
            logger.warning("the call cannot go on without its providers: %s", exc)
            # Apologize (the line may be cached even when TTS is what failed), then hang up.
            self._lifecycle.decide("error", str(exc))
            self._discard_turn()
            await self._say(self._limits.apology_message, kind="apology", end_reason="error")
            return
        tools = self._tools.definitions()
        await prefill_llm(self._connections, self._conversation, self._greeting, tools)
        if self._options.warm_fixed_lines:
            await warm_fixed_lines(self._connections, self._lines, self._limits)

    # --- what the caller does ---------------------------------------------------------------

    async def _consume(self) -> None:
        async for event in self._transport.events():
            if isinstance(event, AudioIn):
                await self._on_audio(event)
            elif isinstance(event, MarkPlayed):
                self._playout.on_mark(event.name)
            elif isinstance(event, DtmfIn):
                await self._on_dtmf(event.digit)
            elif isinstance(event, TextIn):
                await self._on_text(event.text)
            elif isinstance(event, InterruptIn):
                if self._floor.can_interrupt(explicit=True):
                    await self._floor.interrupt(resume=False)
            elif isinstance(event, HangupIn):
                break
            self._update_idle()
        self._lifecycle.finish("caller_hangup")

    async def _on_audio(self, audio: AudioIn) -> None:
        if self._lifecycle.closing:
            return
        caller = self._speech
        try:
            probabilities = caller.hear(audio.pcm, audio.mulaw)
        except ValueError as exc:
            logger.warning("dropped bad caller audio: %s", exc)
            return
        for probability in probabilities:
            for event in caller.window(probability, agent_speaking=self._floor.busy):
                await self._on_turn_event(event)

    async def _on_turn_event(self, event: TurnEvent) -> None:
        caller = self._speech
        if isinstance(event, SpeechStarted):
            self._idle.cancel()
            if self._floor.can_interrupt():
                await self._floor.interrupt(resume=True)
            if caller.turn is not None:
                self._floor.drop_speculative()  # the caller went on after the endpoint
            caller.start(event.voiced_ms)
        elif isinstance(event, SpeechResumed):
            self._floor.drop_speculative()
            caller.open_segment(event.voiced_ms)
        elif isinstance(event, PauseDetected):
            caller.transcribe()
        elif isinstance(event, TurnEnded):
            caller.end()

    def transcript_ready(self, turn: CallerTurn, text: str) -> None:
        """`TurnOwner`: prepare the answer to `text` behind a closed gate."""
        if self._floor.speculative is not None or self._lifecycle.closing:
            return
        user = ChatMessage(role="user", content=text)
        response = Response(self._deps, self._label(), LlmReply((user,)), speculative=True)
        self._floor.speculate(Running(response, answers=text))

    def turn_ended(self, turn: CallerTurn, revision: int) -> None:
        """`TurnOwner`: answer the turn once it is transcribed."""
        self._spawn(self._confirm(turn, revision))

    async def _confirm(self, turn: CallerTurn, revision: int) -> None:
        """Commit an ended turn once transcribed, and answer it."""
        results = await asyncio.gather(*turn.finals, return_exceptions=True)
        caller = self._speech
        if turn is not caller.turn or turn.revision != revision or self._lifecycle.closing:
            return
        caller.take(turn)
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        text = turn.text()
        floor = self._floor
        if failure is not None:
            logger.warning("speech recognition failed: %s", failure)
            floor.drop_speculative()
            await self._say(self._limits.apology_message, kind="apology")
            return
        if not text:
            floor.drop_speculative()
            if floor.resume is not None:
                await self._resume_speaking()  # the interruption brought no words
            self._update_idle()
            return
        await floor.take()  # (an answer still playing when interruptions are off)
        floor.forget_resume()
        self._reprompts = 0
        self._caller_said(text, source="speech")
        self._turns += 1
        if not floor.promote(text, self._turns, turn.timing):
            await self._reply(turn=self._turns, timing=turn.timing)

    async def _on_dtmf(self, digit: str) -> None:
        if self._lifecycle.closing:
            return
        try:
            sequence = self._dtmf.add(digit)
        except ValueError as exc:
            logger.warning("ignored keypad input: %s", exc)
            return
        self._idle.cancel()
        if self._floor.can_interrupt(explicit=True):
            await self._floor.interrupt(resume=False)
        if sequence is None:
            self._dtmf_done.start(self._options.dtmf_timeout_s)
            return
        await self._keypad(sequence)

    async def _on_dtmf_timeout(self) -> None:
        sequence = self._dtmf.flush()
        if sequence is not None and not self._lifecycle.closing:
            await self._keypad(sequence)
        self._update_idle()

    async def _keypad(self, sequence: str) -> None:
        self._dtmf_done.cancel()
        self._floor.drop_speculative()
        await self._floor.take()
        self._journal.record(self._journal.new_item("dtmf", sequence))
        self._reprompts = 0
        self._conversation.add(ChatMessage(role="user", content=keypad_text(sequence)))
        await self._reply()

    async def _on_text(self, text: str) -> None:
        text = text.strip()
        if not text or self._lifecycle.closing:
            return
        self._idle.cancel()
        self._floor.drop_speculative()
        await self._floor.take()
        self._reprompts = 0
        self._caller_said(text, source="text")
        await self._reply()

    def _caller_said(self, text: str, *, source: Literal["speech", "text"]) -> None:
        self._journal.record(self._journal.new_item("caller", text, source=source))
        self._journal.emit(TranscriptFinal(text=text, source=source))
        self._conversation.add(ChatMessage(role="user", content=text))

    def _discard_turn(self) -> None:
        """Forget the caller's turn in progress (its audio is transcribed and dropped)."""
        self._speech.discard()
        self._floor.drop_speculative()

    # --- what the agent says ----------------------------------------------------------------

    def _label(self) -> str:
        self._labels += 1
        return f"r{self._labels}"

    async def _reply(self, *, turn: int | None = None, timing: TurnTiming | None = None) -> None:
        """Answer the caller input just committed to the conversation."""
        response = Response(self._deps, self._label(), LlmReply(), turn=turn, timing=timing)
        await self._floor.begin(Running(response))

    async def _say(
        self, text: str, *, kind: str, end_reason: EndReason | None = None, resumed: bool = False
    ) -> Running:
        """Speak a fixed line (greeting, re-prompt, goodbye, apology, resumed remainder); with
        `end_reason` the call closes and is hung up once the line is heard."""
        line = FixedLine(text, cached=not resumed, continues=resumed)
        running = Running(
            Response(self._deps, self._label(), line, kind=kind), end_reason=end_reason
        )
        if end_reason is not None:
            self._lifecycle.close()
        await self._floor.begin(running)
        return running

    def _start_running(self, running: Running) -> asyncio.Task[None]:
        return self._spawn(self._run_response(running))

    async def _run_response(self, running: Running) -> None:
        try:
            action = await running.response.run()
        except PlayoutError as exc:
            logger.warning("the transport failed: %s", exc)
            self._lifecycle.finish("error", str(exc))
            return
        except Exception as exc:
            # Even the apology could not be spoken: the agent has no voice left.
            logger.warning("response %s failed beyond apology: %s", running.response.label, exc)
            await self._hang_up("error", f"{type(exc).__name__}: {exc}")
            return
        self._floor.done(running)
        if isinstance(action, EndCall):
            await self._hang_up("agent_hangup")
        elif isinstance(action, Transfer):
            self._lifecycle.finish("transferred")
        elif running.end_reason is not None:
            await self._hang_up(running.end_reason)
        self._update_idle()

    async def _on_false_interruption(self) -> None:
        caller = self._speech
        turn = caller.turn
        if self._floor.resume is None or self._lifecycle.closing:
            return
        if turn is not None and (caller.speaking or turn.text()):
            return  # words came, or may still come: the turn's confirmation decides
        if turn is not None:
            self._discard_turn()
        await self._resume_speaking()

    async def _resume_speaking(self) -> None:
        text = self._floor.take_resume()
        if text:
            await self._say(text, kind="resume", resumed=True)

    # --- idle and time limits ---------------------------------------------------------------

    def _waiting_for_caller(self) -> bool:
        """The conversation is the caller's to continue: nobody speaks or is about to."""
        return (
            self._lifecycle.phase is CallPhase.TALKING
            and self._floor.idle
            and self._speech.idle
            and not self._dtmf.pending
        )

    def _update_idle(self) -> None:
        if not self._waiting_for_caller():
            self._idle.cancel()
        elif not self._idle.pending:
            self._idle.start(self._limits.idle_timeout_s)

    async def _on_idle(self) -> None:
        if not self._waiting_for_caller():
            return
        if self._reprompts < self._limits.idle_reprompts:
            self._reprompts += 1
            await self._say(self._limits.idle_reprompt_message, kind="reprompt")
        else:
            limits = self._limits
            await self._say(limits.goodbye_message, kind="goodbye", end_reason="idle_timeout")

    async def _on_max_duration(self) -> None:
        if self._lifecycle.closing:
            return
        self._discard_turn()
        self._floor.forget_resume()
        message = self._limits.max_duration_message
        await self._say(message, kind="goodbye", end_reason="max_duration")
