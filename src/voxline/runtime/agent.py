"""`AgentRuntime`: one spoken conversation, from greeting to hang-up, over any transport.

Everything of a call runs in one task group: the inbound event loop (audio is processed
inline: VAD, turn detection, STT feeding), the STT feeder, the journal writer and the
agent's responses. The caller's turn is detected by `TurnDetector`; at a short pause the
speech so far is transcribed and a reply prepared speculatively behind a closed gate, which
opens when the turn is confirmed (or the reply is dropped if the caller goes on); a
recognizer's utterance-end cue confirms it early when our VAD already hears the pause. Caller
speech over the agent interrupts it (barge-in); an interruption that yields no words is
false and the agent resumes what it had not said.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from voxline.agent_spec import AgentSpec, fill_placeholders
from voxline.providers.base import (
    ChatMessage,
    Pcm16,
    PrefillingLlmSession,
    ProviderError,
    ProviderSet,
    SpeechEvent,
    SpeechEventSource,
    Transcript,
)
from voxline.runtime.context import Conversation
from voxline.runtime.dtmf import DtmfCollector, keypad_text
from voxline.runtime.greeting import SHARED_CACHE, GreetingCache, LineCache
from voxline.runtime.journal import Journal
from voxline.runtime.listener import CallerAudio
from voxline.runtime.metrics import TurnTiming
from voxline.runtime.options import RuntimeOptions
from voxline.runtime.playout import Playout, PlayoutError
from voxline.runtime.recording import CallRecorder
from voxline.runtime.response import Response, ResponseDeps, split_clauses
from voxline.runtime.sessions import CallSessions
from voxline.runtime.speech import synthesize_line
from voxline.runtime.stt_channel import SttChannel
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
    TurnDetector,
    TurnEnded,
    TurnEvent,
    TurnState,
)
from voxline.tools import EndCall, ToolRunner, Transfer

logger = logging.getLogger(__name__)

EndReason = Literal[
    "caller_hangup",
    "agent_hangup",
    "transferred",
    "idle_timeout",
    "max_duration",
    "error",
    "voicemail",
    "machine_detected",
]
_NO_VARIABLES: Mapping[str, str] = MappingProxyType({})
_JOURNAL_DRAIN_S = 10.0
_CLOSE_SESSIONS_S = 5.0


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """How a call ended. `first_response_ms`: first agent audio sent minus `run()` start."""

    end_reason: EndReason
    first_response_ms: float | None
    duration_ms: int
    error: str | None = None


@dataclass(eq=False, slots=True)
class _Running:
    """A response and the task running it."""

    response: Response
    task: asyncio.Task[None] | None = None
    answers: str = ""
    """The caller text a speculative response answers."""
    end_reason: EndReason | None = None
    """Hang up with this reason once it has been heard."""


@dataclass(eq=False, slots=True)
class _CallerTurn:
    """The caller's turn in progress: its transcribed segments and its timing."""

    finals: list[asyncio.Future[str]] = field(default_factory=list)
    generation: int = 0
    """Bumped when the caller speaks again, so a pending confirmation knows it is stale."""
    timing: TurnTiming = field(default_factory=TurnTiming)

    def transcribed(self) -> bool:
        return all(final.done() for final in self.finals)

    def text(self) -> str:
        parts = [
            final.result().strip()
            for final in self.finals
            if final.done() and not final.cancelled() and final.exception() is None
        ]
        return " ".join(part for part in parts if part)


class AgentRuntime:
    """Holds one conversation; knows no transport beyond the `Transport` protocol.

    `run()` returns when the call is over and never raises for the call's own failures
    (a provider error mid-turn is answered with the agent's apology and the call goes on).
    `greeting_cache` defaults to the process-wide cache. `clock` must advance in real time;
    it only stamps measurements.
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
        greeting_cache: GreetingCache | None = None,
        clock: Callable[[], float] = time.monotonic,
        options: RuntimeOptions | None = None,
    ) -> None:
        self._spec = spec
        self._providers = providers
        self._transport = transport
        self._recorder = recorder
        self._tools = tools
        self._variables = dict(variables)
        self._memory = tuple(memory)
        self._cache = greeting_cache if greeting_cache is not None else SHARED_CACHE
        self._clock = clock
        self._options = options if options is not None else RuntimeOptions()
        self._limits = spec.limits
        self._interruptions = spec.turn_taking.interruptions
        self._playout = Playout(
            transport,
            clock=clock,
            lead_ms=self._options.playout_lead_ms,
            chunk_ms=self._options.playout_chunk_ms,
        )

        self._ran = False
        self._started_at = 0.0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._group: asyncio.TaskGroup | None = None
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._finished = asyncio.Event()
        self._end: tuple[EndReason, str | None] | None = None
        self._ending = False
        """The call is saying goodbye: caller input is ignored from now on."""

        self._stt = SttChannel()
        self._dtmf = DtmfCollector()
        self._turn: _CallerTurn | None = None
        self._active: _Running | None = None
        self._speculative: _Running | None = None
        self._resume: str | None = None
        """What the agent had not said when interrupted, until the interruption proves real."""
        self._last_voiced_at: float | None = None
        self._segment_start = 0
        """Where the open (or last) STT segment began in the recognizer's audio, in samples."""
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
        self._journal = Journal(
            self._recorder, self._transport, clock=self._clock, started_at=self._started_at
        )
        journal_task = asyncio.ensure_future(self._journal.run())
        self._sessions = CallSessions(
            self._providers,
            input_rate=self._transport.input_rate,
            output_rate=self._transport.output_rate,
        )
        try:
            self._setup()
            async with asyncio.TaskGroup() as group:
                self._group = group
                self._spawn(self._consume())
                self._spawn(self._open_call())
                self._after("max_duration", self._limits.max_duration_s, self._on_max_duration)
                await self._finished.wait()
                for task in self._tasks:
                    task.cancel()
            self._settle_active()
        except Exception as exc:
            logger.exception("call failed")
            self._finish("error", f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(Exception):
                await self._transport.hang_up()
        finally:
            for handle in self._timers.values():
                handle.cancel()
            try:
                await asyncio.wait_for(self._sessions.aclose(), _CLOSE_SESSIONS_S)
            except TimeoutError:
                logger.warning("provider sessions did not close in time")
            outcome = self._outcome()
            self._journal.emit(
                "session.ended",
                end_reason=outcome.end_reason,
                first_response_ms=outcome.first_response_ms,
                duration_ms=outcome.duration_ms,
                error=outcome.error,
            )
            self._journal.close()
            try:
                await asyncio.wait_for(journal_task, _JOURNAL_DRAIN_S)
            except TimeoutError:
                logger.warning("the call's record was not fully written in time")
        return outcome

    def _settle_active(self) -> None:
        """The call ended mid-answer (the caller hung up): record what was heard of it."""
        running, self._active = self._active, None
        if running is not None and running.response.spoken:
            running.response.interrupted()

    def _setup(self) -> None:
        spec = self._spec
        tt = spec.turn_taking
        options = self._options
        self._audio = CallerAudio(
            self._transport.input_rate,
            self._sessions.stt_rate,
            vad=tt.vad,
            max_voiced_ms=max(tt.speech_start_ms, tt.interruptions.min_speech_ms),
            pre_roll_ms=options.pre_roll_ms,
            stt_mulaw=self._sessions.stt_mulaw,
        )
        self._detector = TurnDetector(
            tt, window_ms=self._audio.window_ms, pause_ms=options.pause_ms
        )
        system_prompt = fill_placeholders(spec.system_prompt, self._variables)
        self._conversation = Conversation(
            system_prompt, self._memory, budget_chars=options.history_budget_chars
        )
        self._lines = LineCache(
            self._cache, spec.tts.model_dump_json(), self._transport.output_rate
        )
        self._deps = ResponseDeps(
            conversation=self._conversation,
            playout=self._playout,
            journal=self._journal,
            sessions=self._sessions,
            tools=self._tools,
            lines=self._lines,
            limits=self._limits,
            clock=self._clock,
            transfer=self._transfer,
            tool_filler_after_s=options.tool_filler_after_s,
            max_tool_rounds=options.max_tool_rounds,
        )

    async def _open_call(self) -> None:
        """Greet first; providers connect while the greeting plays, never before it."""
        greeting = fill_placeholders(self._spec.first_message or "", self._variables).strip()
        # A caller who typed (or keyed) before the greeting began is answered instead.
        if greeting and self._active is None:
            if any(self._lines.get(clause) is None for clause in split_clauses(greeting)):
                self._sessions.start_tts()
            running = await self._say(greeting, kind="greeting")
            audible = asyncio.ensure_future(self._playout.audible.wait())
            assert running.task is not None
            try:
                await asyncio.wait([audible, running.task], return_when=asyncio.FIRST_COMPLETED)
            finally:
                audible.cancel()
        self._sessions.start()
        self._spawn(self._serve_stt())
        self._spawn(self._watch_sessions())
        self._update_idle()

    async def _serve_stt(self) -> None:
        try:
            session = await self._sessions.stt()
        except ProviderError:
            return  # _watch_sessions ends the call
        self._spawn(self._relay_interim(session.interim()))
        if isinstance(session, SpeechEventSource):
            self._spawn(self._follow_speech_events(session.events()))
        await self._stt.serve(session)

    async def _relay_interim(self, interim: AsyncIterator[Transcript]) -> None:
        try:
            async for transcript in interim:
                if transcript.text.strip():
                    self._journal.emit("transcript.partial", text=transcript.text)
        except Exception as exc:
            logger.debug("interim transcripts stopped: %s", exc)

    async def _follow_speech_events(self, events: AsyncIterator[SpeechEvent]) -> None:
        try:
            async for event in events:
                if event.kind == "utterance_end":
                    self._on_utterance_end(event.at_s)
        except Exception as exc:
            logger.debug("speech events stopped: %s", exc)

    def _on_utterance_end(self, at_s: float) -> None:
        """The recognizer heard the caller's utterance end at `at_s` into its audio."""
        turn = self._turn
        if turn is None or self._closing():
            return
        # A late cue about earlier audio says nothing about the pause we are in now.
        if at_s * self._sessions.stt_rate < self._segment_start:
            return
        for event in self._detector.utterance_end():
            if isinstance(event, TurnEnded):
                self._end_turn(turn)

    async def _watch_sessions(self) -> None:
        try:
            await self._sessions.tts()
            await self._sessions.stt()
            await self._sessions.llm()
        except ProviderError as exc:
            logger.warning("the call cannot go on without its providers: %s", exc)
            # Apologize (the line may be cached even when TTS is what failed), then hang up.
            self._finish_later("error", str(exc))
            self._discard_turn()
            await self._say(self._limits.apology_message, kind="apology", end_reason="error")
            return
        await self._prefill_llm()
        if self._options.warm_fixed_lines:
            await self._warm_fixed_lines()

    async def _prefill_llm(self) -> None:
        """Let a model with a prompt cache evaluate the context while the greeting plays."""
        llm = await self._sessions.llm()
        if not isinstance(llm, PrefillingLlmSession):
            return
        # The greeting joins the context once heard; prefill as if it was heard in full.
        greeting = fill_placeholders(self._spec.first_message or "", self._variables).strip()
        pending = [ChatMessage(role="assistant", content=greeting)] if greeting else []
        await llm.prefill(self._conversation.request(pending, tools=self._tools.definitions()))

    async def _warm_fixed_lines(self) -> None:
        limits = self._limits
        lines = {limits.apology_message, limits.tool_filler_message, limits.goodbye_message}
        lines.add(limits.idle_reprompt_message)
        tts = await self._sessions.tts()
        for line in sorted(lines):
            text = line.strip()
            if not text or self._lines.get(text) is not None:
                continue
            try:
                self._lines.put(text, await synthesize_line(tts, text, self._lines.rate))
            except Exception as exc:
                logger.debug("could not prepare the line %r: %s", text, exc)

    def _finish(self, reason: EndReason, error: str | None = None) -> None:
        """End the call now (the first reason given wins)."""
        self._finish_later(reason, error)
        self._finished.set()

    def _finish_later(self, reason: EndReason, error: str | None = None) -> bool:
        """Decide how the call ends, unless already decided; True if this decided it."""
        if self._end is not None:
            return False
        self._end = (reason, error)
        return True

    def _outcome(self) -> CallOutcome:
        reason, error = self._end if self._end is not None else ("caller_hangup", None)
        first_audio = self._playout.first_audio_at
        first_ms = None if first_audio is None else (first_audio - self._started_at) * 1000
        duration_ms = round((self._clock() - self._started_at) * 1000)
        return CallOutcome(reason, first_ms, duration_ms, error)

    async def _hang_up(self, reason: EndReason, error: str | None = None) -> None:
        # Decided before the far end learns of it: its own hang-up that follows is ours.
        self._finish_later(reason, error)
        try:
            await self._transport.hang_up()
        except Exception as exc:
            logger.warning("hang-up failed: %s", exc)
        self._finished.set()

    async def _transfer(self, number: str) -> None:
        decided = self._finish_later("transferred")
        try:
            await self._transport.transfer(number)
        except BaseException:
            if decided:
                self._end = None
            raise

    # --- tasks and timers -------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        assert self._group is not None
        task = self._group.create_task(coro)
        if self._finished.is_set():
            task.cancel()  # the call is over: it must not start anything new
            return task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _after(
        self, name: str, delay: float, action: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        """Run `action` in `delay` seconds (replacing a pending timer of the same name)."""
        self._cancel_timer(name)
        loop = asyncio.get_running_loop()

        def fire() -> None:
            del self._timers[name]
            if not self._finished.is_set():
                self._spawn(action())

        self._timers[name] = loop.call_later(delay, fire)

    def _cancel_timer(self, name: str) -> None:
        handle = self._timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    # --- inbound events ---------------------------------------------------------------------

    async def _consume(self) -> None:
        async for event in self._transport.events():
            if isinstance(event, AudioIn):
                await self._on_audio(event.pcm, event.mulaw)
            elif isinstance(event, MarkPlayed):
                self._playout.on_mark(event.name)
            elif isinstance(event, DtmfIn):
                await self._on_dtmf(event.digit)
            elif isinstance(event, TextIn):
                await self._on_text(event.text)
            elif isinstance(event, InterruptIn):
                if self._can_interrupt(explicit=True):
                    await self._interrupt(resume=False)
            elif isinstance(event, HangupIn):
                break
            self._update_idle()
        self._finish("caller_hangup")

    async def _on_audio(self, pcm: Pcm16, mulaw: bytes | None = None) -> None:
        if self._closing():
            return
        try:
            probabilities = self._audio.speech_probabilities(pcm, mulaw)
        except ValueError as exc:
            logger.warning("dropped bad caller audio: %s", exc)
            return
        segment = self._audio.segment_audio(pcm, mulaw)
        if segment is not None:
            self._stt.send(segment)
        for probability in probabilities:
            busy = self._active is not None or self._playout.busy
            for event in self._detector.push(probability, agent_speaking=busy):
                await self._on_turn_event(event)
            if self._detector.voiced and self._detector.state is TurnState.SPEAKING:
                self._last_voiced_at = self._clock()

    async def _on_turn_event(self, event: TurnEvent) -> None:
        if isinstance(event, SpeechStarted):
            await self._on_speech_started(event.voiced_ms)
        elif isinstance(event, SpeechResumed):
            self._drop_speculative()
            self._open_segment(event.voiced_ms)
        elif isinstance(event, PauseDetected):
            if self._turn is not None:
                self._transcribe(self._turn)
        elif isinstance(event, TurnEnded) and self._turn is not None:
            self._end_turn(self._turn)

    async def _on_speech_started(self, voiced_ms: float) -> None:
        self._cancel_timer("idle")
        if self._can_interrupt():
            await self._interrupt(resume=True)
        if self._turn is None:
            self._turn = _CallerTurn()
        else:
            self._turn.generation += 1  # the caller went on after the endpoint: same turn
            self._drop_speculative()
        self._open_segment(voiced_ms)

    def _open_segment(self, voiced_ms: float) -> None:
        self._segment_start = self._stt.samples_sent
        self._stt.send(self._audio.open_segment(voiced_ms))

    def _transcribe(self, turn: _CallerTurn) -> None:
        """End the STT segment and ask for its text (speculatively, at a pause)."""
        if not self._audio.segment_open:
            return
        self._stt.send(self._audio.close_segment())
        final = self._stt.finalize()
        turn.finals.append(final)
        turn.timing.stt_start = self._clock()
        turn.timing.stt_done = None
        final.add_done_callback(functools.partial(self._on_final, turn))

    def _on_final(self, turn: _CallerTurn, final: asyncio.Future[str]) -> None:
        if final.cancelled() or final.exception() is not None or turn is not self._turn:
            return
        if not turn.transcribed():
            return
        turn.timing.stt_done = self._clock()
        if self._detector.state is not TurnState.PAUSED or self._audio.segment_open:
            return  # still speaking, or the turn already ended (its confirmation waits)
        text = turn.text()
        for event in self._detector.set_transcript(text):
            if isinstance(event, TurnEnded):
                self._end_turn(turn, at=turn.timing.stt_done)
                return
        if text and self._speculative is None and not self._closing():
            self._start_speculative(text)

    def _end_turn(self, turn: _CallerTurn, *, at: float | None = None) -> None:
        """The endpoint was reached (`at`: the transcript's arrival, when that decided it)."""
        self._transcribe(turn)
        turn.generation += 1
        turn.timing.speech_end = self._last_voiced_at
        turn.timing.endpoint = at if at is not None else self._clock()
        self._spawn(self._confirm(turn, turn.generation))

    async def _confirm(self, turn: _CallerTurn, generation: int) -> None:
        """Commit an ended turn once transcribed, and answer it."""
        results = await asyncio.gather(*turn.finals, return_exceptions=True)
        if turn is not self._turn or turn.generation != generation or self._closing():
            return
        self._turn = None
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        text = turn.text()
        if failure is not None:
            logger.warning("speech recognition failed: %s", failure)
            self._drop_speculative()
            await self._say(self._limits.apology_message, kind="apology")
            return
        if not text:
            self._drop_speculative()
            if self._resume is not None:
                await self._resume_speaking()  # the interruption brought no words
            self._update_idle()
            return
        await self._take_floor()  # (an answer still playing when interruptions are off)
        self._resume = None
        self._cancel_timer("false_interruption")
        self._reprompts = 0
        self._caller_said(text, source="speech")
        self._turns += 1
        speculative, self._speculative = self._speculative, None
        if (
            speculative is not None
            and speculative.answers == text
            and speculative.task is not None
            and not speculative.task.done()
        ):
            response = speculative.response
            response.turn = self._turns
            _merge_turn_timing(response.timing, turn.timing)
            self._active = speculative
            response.gate.set()
            return
        if speculative is not None:
            self._cancel(speculative)
        await self._reply(turn=self._turns, timing=turn.timing)

    def _start_speculative(self, text: str) -> None:
        user = ChatMessage(role="user", content=text)
        response = Response(self._deps, self._label(), pending=(user,), gate=asyncio.Event())
        running = _Running(response, answers=text)
        running.task = self._spawn(self._run_response(running))
        self._speculative = running

    def _drop_speculative(self) -> None:
        speculative, self._speculative = self._speculative, None
        if speculative is not None:
            self._cancel(speculative)

    async def _on_dtmf(self, digit: str) -> None:
        if self._closing():
            return
        try:
            sequence = self._dtmf.add(digit)
        except ValueError as exc:
            logger.warning("ignored keypad input: %s", exc)
            return
        self._cancel_timer("idle")
        if self._can_interrupt(explicit=True):
            await self._interrupt(resume=False)
        if sequence is None:
            self._after("dtmf", self._options.dtmf_timeout_s, self._on_dtmf_timeout)
            return
        await self._keypad(sequence)

    async def _on_dtmf_timeout(self) -> None:
        sequence = self._dtmf.flush()
        if sequence is not None and not self._closing():
            await self._keypad(sequence)
        self._update_idle()

    async def _keypad(self, sequence: str) -> None:
        self._cancel_timer("dtmf")
        self._drop_speculative()
        await self._take_floor()
        self._journal.record(self._journal.new_item("dtmf", sequence))
        self._reprompts = 0
        self._conversation.add(ChatMessage(role="user", content=keypad_text(sequence)))
        await self._reply()

    async def _on_text(self, text: str) -> None:
        text = text.strip()
        if not text or self._closing():
            return
        self._cancel_timer("idle")
        self._drop_speculative()
        await self._take_floor()
        self._reprompts = 0
        self._caller_said(text, source="text")
        await self._reply()

    def _caller_said(self, text: str, *, source: str) -> None:
        self._journal.record(self._journal.new_item("caller", text, source=source))
        self._journal.emit("transcript.final", text=text, source=source)
        self._conversation.add(ChatMessage(role="user", content=text))

    # --- the agent speaking -----------------------------------------------------------------

    def _label(self) -> str:
        self._labels += 1
        return f"r{self._labels}"

    async def _reply(self, *, turn: int | None = None, timing: TurnTiming | None = None) -> None:
        """Answer the caller input just committed to the conversation."""
        response = Response(self._deps, self._label(), turn=turn, timing=timing)
        await self._begin(_Running(response))

    async def _say(
        self,
        text: str,
        *,
        kind: str,
        end_reason: EndReason | None = None,
        resumed: bool = False,
    ) -> _Running:
        """Speak a fixed line (greeting, re-prompt, goodbye, apology, resumed remainder)."""
        response = Response(
            self._deps,
            self._label(),
            kind=kind,
            text=text,
            cache_text=not resumed,
            continues_previous=resumed,
        )
        running = _Running(response, end_reason=end_reason)
        if end_reason is not None:
            self._ending = True
            response.closing = True
        await self._begin(running)
        return running

    async def _begin(self, running: _Running) -> None:
        await self._take_floor()
        self._active = running
        running.task = self._spawn(self._run_response(running))

    async def _take_floor(self) -> None:
        """Make sure the agent is silent before it starts something new."""
        if self._active is not None or self._playout.busy:
            await self._interrupt(resume=False)

    def _cancel(self, running: _Running) -> None:
        if running.task is not None:
            running.task.cancel()

    async def _run_response(self, running: _Running) -> None:
        try:
            action = await running.response.run()
        except PlayoutError as exc:
            logger.warning("the transport failed: %s", exc)
            self._finish("error", str(exc))
            return
        except Exception as exc:
            # Even the apology could not be spoken: the agent has no voice left.
            logger.warning("response %s failed beyond apology: %s", running.response.label, exc)
            await self._hang_up("error", f"{type(exc).__name__}: {exc}")
            return
        if self._active is running:
            self._active = None
        if isinstance(action, EndCall):
            await self._hang_up("agent_hangup")
        elif isinstance(action, Transfer):
            self._finish("transferred")
        elif running.end_reason is not None:
            await self._hang_up(running.end_reason)
        self._update_idle()

    def _closing(self) -> bool:
        """The agent is saying goodbye (or handing over): caller input changes nothing now."""
        return self._ending or (self._active is not None and self._active.response.closing)

    def _can_interrupt(self, *, explicit: bool = False) -> bool:
        """Whether caller input may cut the agent off now; `explicit` input (keypad, a
        client's interrupt) does so even when speech interruptions are disabled."""
        if self._closing() or not (explicit or self._interruptions.enabled):
            return False
        return self._active is not None or self._playout.busy

    async def _interrupt(self, *, resume: bool) -> None:
        """Barge-in: silence the agent now and keep only what the caller heard."""
        running, self._active = self._active, None
        if running is not None:
            self._cancel(running)
        await self._playout.clear()
        if running is None:
            return
        unheard = running.response.interrupted()
        self._cancel_timer("false_interruption")
        self._resume = None
        interruptions = self._interruptions
        if resume and unheard and interruptions.resume_after_false_interruption:
            self._resume = unheard
            delay = interruptions.false_interruption_timeout_ms / 1000
            self._after("false_interruption", delay, self._on_false_interruption_timeout)

    async def _on_false_interruption_timeout(self) -> None:
        turn = self._turn
        if self._resume is None or self._ending:
            return
        if turn is not None and (self._detector.state is TurnState.SPEAKING or turn.text()):
            return  # words came, or may still come: the turn's confirmation decides
        if turn is not None:
            self._discard_turn()
        await self._resume_speaking()

    async def _resume_speaking(self) -> None:
        text, self._resume = self._resume, None
        self._cancel_timer("false_interruption")
        if text:
            await self._say(text, kind="resume", resumed=True)

    def _discard_turn(self) -> None:
        """Forget the caller's turn in progress (its audio is transcribed and dropped)."""
        self._turn = None
        self._detector.reset()
        self._drop_speculative()
        if self._audio.segment_open:
            self._stt.send(self._audio.close_segment())
            self._stt.finalize().add_done_callback(_ignore_result)

    # --- idle and time limits -------------------------------------------------------------

    def _waiting_for_caller(self) -> bool:
        return not (
            self._ending
            or self._finished.is_set()
            or self._active is not None
            or self._speculative is not None
            or self._turn is not None
            or self._resume is not None
            or self._dtmf.pending
            or self._detector.state is not TurnState.SILENT
            or self._playout.busy
        )

    def _update_idle(self) -> None:
        if not self._waiting_for_caller():
            self._cancel_timer("idle")
        elif "idle" not in self._timers:
            self._after("idle", self._limits.idle_timeout_s, self._on_idle)

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
        if self._closing():
            return
        self._discard_turn()
        self._resume = None
        message = self._limits.max_duration_message
        await self._say(message, kind="goodbye", end_reason="max_duration")

    # --- acting on the call from outside (machine verdicts of outbound calls) ---------------

    async def hang_up_now(self, reason: EndReason) -> bool:
        """End the call now; False if it is not running (not started yet, or over)."""
        if self._group is None or self._finished.is_set():
            return False
        await self._hang_up(reason)
        return True

    async def say_then_hang_up(self, text: str, reason: EndReason) -> bool:
        """Cut off whatever is playing, speak `text` in full, then hang up with `reason`;
        False if the call is not running."""
        if self._group is None or self._finished.is_set():
            return False
        self._discard_turn()
        self._resume = None
        await self._say(text, kind="message", end_reason=reason)
        return True


def _ignore_result(future: asyncio.Future[str]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved, so a failure here is not reported as unhandled


def _merge_turn_timing(target: TurnTiming, turn: TurnTiming) -> None:
    """Give a promoted speculative response the timing of the caller turn it answers."""
    target.speech_end = turn.speech_end
    target.endpoint = turn.endpoint
    target.stt_start = turn.stt_start
    target.stt_done = turn.stt_done
