"""`AgentRuntime`: one spoken conversation, from greeting to hang-up, over any transport.

It joins a few objects that each have one job:
- `CallLifecycle` (`phase.py`): the call's phase (opening, talking, closing, ended) and how
  it ends;
- `CallerInput` (`caller_input.py`) over `CallerSpeech` (`caller_speech.py`): what the caller
  gives the call (speech turns, keypad, text), from audio to committed turns;
- `Floor` (`floor.py`): who holds the floor, speculative replies, barge-in and resumption;
- `Response` with its producers (`response.py`, `producers.py`): what the agent says;
- `Journal` (`journal.py`): the transcript, metrics and call events, recorded in order.

Everything of a call runs in one task group: the inbound event loop (audio is processed
inline: VAD, turn detection, STT feeding), the STT feeder, the journal writer and the
agent's responses. At a short pause the speech so far is transcribed and a reply prepared
speculatively behind a closed gate, which opens when the turn is confirmed (or the reply is
dropped if the caller goes on). Caller speech over the agent interrupts it (barge-in); an
interruption that yields no words is false and the agent resumes what it had not said.

Why one module of ~450 lines: it is where the call's parts are wired together and their
interplay is decided (opening, ending, idle and time limits); each part it joins lives in a
module of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from voxline.agent_spec import AgentSpec, fill_placeholders
from voxline.providers.base import (
    ChatMessage,
    ProviderError,
    ProviderSet,
)
from voxline.runtime.backchannels import Backchannels
from voxline.runtime.caller_input import CallerInput
from voxline.runtime.context import Conversation
from voxline.runtime.events import AgentResumed, SessionEnded
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
        self._idle = Timer(self._on_idle)
        self._max_duration = Timer(self._on_max_duration)
        self._timers = [self._idle, self._max_duration, self._floor.false_interruption]
        self._input: CallerInput | None = None
        """Made when the call runs (it opens the call's voice activity detector)."""
        self._labels = 0
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
            self._input = self._listen()
            self._timers.extend(self._input.timers)
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

    def _listen(self) -> CallerInput:
        tt = self._spec.turn_taking
        audio = CallerAudio(
            self._transport.input_rate,
            self._connections.stt_rate,
            vad=tt.vad,
            max_voiced_ms=max(tt.speech_start_ms, tt.interruptions.min_speech_ms),
            pre_roll_ms=self._options.pre_roll_ms,
            stt_mulaw=self._connections.stt_mulaw,
        )
        return CallerInput(
            self,
            audio,
            tt,
            pause_ms=self._options.pause_ms,
            stt_rate=self._connections.stt_rate,
            clock=self._clock,
            floor=self._floor,
            lifecycle=self._lifecycle,
            journal=self._journal,
            conversation=self._conversation,
            backchannels=Backchannels(self._spec.language, tt.interruptions.backchannel_phrases),
            keypad_timeout_s=self._options.dtmf_timeout_s,
        )

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        assert self._tasks is not None, "the call is not running"
        return self._tasks.spawn(coro)

    @property
    def _caller(self) -> CallerInput:
        assert self._input is not None, "the call is not running"
        return self._input

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
        self.spawn(self._serve_stt())
        self.spawn(self._watch_connections())
        self.update_idle()

    async def _serve_stt(self) -> None:
        try:
            stt = await self._connections.stt()
        except ProviderError:
            return  # _watch_connections ends the call
        await self._caller.listen(stt)

    async def _watch_connections(self) -> None:
        try:
            await self._connections.tts()
            await self._connections.stt()
            await self._connections.llm()
        except ProviderError as exc:
            logger.warning("the call cannot go on without its providers: %s", exc)
            # Apologize (the line may be cached even when TTS is what failed), then hang up.
            self._lifecycle.decide("error", str(exc))
            self._caller.discard_turn()
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
                await self._caller.on_audio(event)
            elif isinstance(event, MarkPlayed):
                self._playout.on_mark(event.name)
            elif isinstance(event, DtmfIn):
                await self._caller.on_dtmf(event.digit)
            elif isinstance(event, TextIn):
                await self._caller.on_text(event.text)
            elif isinstance(event, InterruptIn):
                await self._caller.on_interrupt()
            elif isinstance(event, HangupIn):
                break
            self.update_idle()
        self._lifecycle.finish("caller_hangup")

    # --- what the agent says ----------------------------------------------------------------

    def _label(self) -> str:
        self._labels += 1
        return f"r{self._labels}"

    # The `caller_input.Agent` protocol: what the caller side asks of the agent.

    def caller_active(self) -> None:
        self._idle.cancel()

    def caller_took_turn(self) -> None:
        self._reprompts = 0

    def speculate(self, text: str) -> None:
        user = ChatMessage(role="user", content=text)
        response = Response(self._deps, self._label(), LlmReply((user,)), speculative=True)
        self._floor.speculate(Running(response, answers=text))

    async def apologize(self) -> None:
        await self._say(self._limits.apology_message, kind="apology")

    async def reply(self, *, turn: int | None = None, timing: TurnTiming | None = None) -> None:
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
        return self.spawn(self._run_response(running))

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
        self.update_idle()

    async def _on_false_interruption(self) -> None:
        await self._caller.on_false_interruption()

    async def resume_speaking(self) -> None:
        text = self._floor.take_resume()
        if text:
            self._journal.emit(AgentResumed(text=text))
            await self._say(text, kind="resume", resumed=True)

    # --- idle and time limits ---------------------------------------------------------------

    def _waiting_for_caller(self) -> bool:
        """The conversation is the caller's to continue: nobody speaks or is about to."""
        return self._lifecycle.phase is CallPhase.TALKING and self._floor.idle and self._caller.idle

    def update_idle(self) -> None:
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
        self._caller.discard_turn()
        self._floor.forget_resume()
        message = self._limits.max_duration_message
        await self._say(message, kind="goodbye", end_reason="max_duration")

    # --- acting on the call from outside: machine verdicts, a drain, an operator ------------

    async def hang_up_now(self, reason: EndReason) -> bool:
        """End the call now; False if it is not running (not started yet, or over)."""
        if self._tasks is None or self._lifecycle.over:
            return False
        await self._hang_up(reason)
        return True

    async def say_then_hang_up(self, text: str, reason: EndReason) -> bool:
        """Cut off whatever is playing, speak `text` in full, then hang up with `reason`; a
        call already saying goodbye goes on as it was. A call that has not started yet ends
        at once with `reason`; False then, and for a call that is over."""
        if self._tasks is None or self._lifecycle.over:
            self._lifecycle.finish(reason)
            return False
        if not self._lifecycle.closing:
            self._caller.discard_turn()
            self._floor.forget_resume()
            await self._say(text, kind="message", end_reason=reason)
        return True

    async def transfer_now(self, number: str) -> None:
        """Hand the line to `number` at once; raises the transport's error if it cannot
        (`TransferUnsupported` on a browser session)."""
        await self._transfer(number)
        self._lifecycle.finish("transferred")

    async def say_now(self, text: str) -> bool:
        """Speak `text` at once, cutting short whatever the agent was saying; False if the
        call is not taking new lines (not yet running, or ending)."""
        if self._tasks is None or self._lifecycle.closing:
            return False
        await self._say(text, kind="supervisor")
        return True
