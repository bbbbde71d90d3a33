"""One agent turn as one cancellable unit: LLM rounds with tools -> clauses -> speech.

A response either streams the LLM (running the tools it asks for and feeding the results
back, up to `max_tool_rounds`) or speaks a fixed text (greeting, re-prompt, goodbye...).
Until `gate` is set it may think and synthesize but nothing leaves it: no audio, no
transcript item, no tool call, no context. Once the gate is open it records the agent item
as each clause starts to be heard and the tool items as they run.

It ends in one of two ways. `run()` returns after everything was played, and commits its
messages to the conversation. Or the runtime cancels it (barge-in) and, after clearing the
playout, calls `interrupted()`, which commits only the words the caller heard.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from voxline.agent_spec import Limits
from voxline.providers.base import (
    ChatMessage,
    LlmRequest,
    LlmSession,
    TextDelta,
    ToolCall,
    ToolCallsRequested,
)
from voxline.runtime.chunker import ClauseChunker
from voxline.runtime.context import Conversation
from voxline.runtime.greeting import LineCache
from voxline.runtime.heard import ClauseSpan, split_heard
from voxline.runtime.journal import Journal
from voxline.runtime.metrics import TurnTiming, turn_metrics
from voxline.runtime.playout import Playout, PlayoutError, Utterance
from voxline.runtime.recording import TranscriptItem
from voxline.runtime.sessions import CallSessions
from voxline.runtime.speech import Clause, Speech, aclose
from voxline.runtime.transport import TransferUnsupported
from voxline.tools import EndCall, ToolAction, ToolOutcome, ToolRunner, Transfer
from voxline.tools.outcome import error_content

logger = logging.getLogger(__name__)

MAX_TOOL_ROUNDS = 5
TOOL_FILLER_AFTER_S = 1.0
_CANCELLED_TOOL = "cancelled: the caller interrupted before the tool finished"
_NO_TRANSFER = "transfer is not possible on this channel"


@dataclass(frozen=True, slots=True)
class ResponseDeps:
    """What every response of a call shares."""

    conversation: Conversation
    playout: Playout
    journal: Journal
    sessions: CallSessions
    tools: ToolRunner
    lines: LineCache
    limits: Limits
    clock: Callable[[], float]
    transfer: Callable[[str], Awaitable[None]]
    """Hand the call over (raises `TransferUnsupported` where there is no phone line)."""
    tool_filler_after_s: float = TOOL_FILLER_AFTER_S
    max_tool_rounds: int = MAX_TOOL_ROUNDS


@dataclass(slots=True)
class _Round:
    """One LLM step: what was said during it and the tools it called."""

    calls: tuple[ToolCall, ...] = ()
    outcomes: list[ToolOutcome] = field(default_factory=list)


class Response:
    """See the module docstring. `kind` labels the agent item ('reply', 'greeting', ...)."""

    def __init__(
        self,
        deps: ResponseDeps,
        label: str,
        *,
        kind: str = "reply",
        pending: Sequence[ChatMessage] = (),
        text: str | None = None,
        cache_text: bool = True,
        continues_previous: bool = False,
        gate: asyncio.Event | None = None,
        turn: int | None = None,
        timing: TurnTiming | None = None,
    ) -> None:
        self.label = label
        self.kind = kind
        self.turn = turn
        self.timing = timing if timing is not None else TurnTiming()
        self.gate = gate if gate is not None else _open_gate()
        self.closing = False
        """Set once the response ends the call (goodbye or transfer): it must be heard out."""
        self.utterance = Utterance(label)
        self._deps = deps
        self._base = deps.conversation.messages(pending)
        self._text = text
        self._cache_text = cache_text
        self._continues_previous = continues_previous
        self._rounds: list[_Round] = []
        self._said: list[Clause] = []
        self._begun: list[Clause] = []
        """The clauses of `utterance.spans`, in the same order."""
        self._finished = False
        self._item: TranscriptItem | None = None
        self._action: ToolAction | None = None
        self._speech = self._new_speech()

    @property
    def spoken(self) -> bool:
        """Some of its audio has been sent."""
        return self.utterance.first_audio_at is not None

    async def run(self) -> ToolAction | None:
        """Think, speak and wait until heard; the action (end call, transfer) it decided on.
        Provider failures are spoken as the agent's apology; only `PlayoutError` (and
        cancellation) propagate."""
        try:
            await self._pipeline(self._produce)
        except PlayoutError:
            raise
        except Exception as exc:
            logger.warning("response %s failed, apologizing: %s", self.label, exc)
            self.closing = False
            self._action = None
            self._said = list(self._begun)  # what the failed speech had not begun is dropped
            self._speech = self._new_speech()
            await self._pipeline(self._apologize)
        self._finish(interrupted=False)
        return self._action

    def interrupted(self) -> str:
        """Settle a cancelled response after the playout was cleared: commit what was heard,
        mark the agent item interrupted. Returns the text the caller did not hear."""
        if self._finished:
            return ""
        heard, unheard = self.utterance.split_heard()
        not_begun = self._said[len(self._begun) :]
        rest = " ".join([unheard, *(clause.text for clause in not_begun)]).strip()
        if self._item is not None:
            self._deps.journal.emit(
                "agent.interrupted", response=self.label, heard_text=heard, text=self._item.text
            )
        self._finish(interrupted=True)
        return rest

    # --- producing clauses ----------------------------------------------------------------

    async def _pipeline(self, produce: Callable[[], Awaitable[None]]) -> None:
        speech = self._speech

        async def producer() -> None:
            try:
                await produce()
            finally:
                speech.end()

        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(speech.run())
                group.create_task(producer())
        except BaseExceptionGroup as errors:
            raise _first_error(errors) from None

    async def _produce(self) -> None:
        if self._text is not None:
            self._new_round()
            self._say_text(self._text, fixed=self._cache_text)
            return
        llm = await self._deps.sessions.llm()
        tools = self._deps.tools.definitions()
        history: list[ChatMessage] = []
        for _ in range(self._deps.max_tool_rounds):
            round_ = self._new_round()
            request = LlmRequest(messages=(*self._base, *history), tools=tools)
            calls = await self._stream(llm, request)
            if not calls:
                return
            round_.calls = calls
            await self.gate.wait()  # tools act on the world: never for an unconfirmed turn
            round_.outcomes = await self._run_tools(calls)
            done = await self._act(round_)
            self._record_results(round_)
            if done:
                return
            history.append(self._assistant_message(round_, self._round_text(round_)))
            history.extend(_tool_message(outcome) for outcome in round_.outcomes)
        rounds = self._deps.max_tool_rounds
        logger.warning("response %s: still calling tools after %d rounds", self.label, rounds)
        self._new_round()
        self._say(self._deps.limits.apology_message, fixed=True)

    async def _apologize(self) -> None:
        self._new_round()
        self._say(self._deps.limits.apology_message, fixed=True)

    async def _stream(self, llm: LlmSession, request: LlmRequest) -> tuple[ToolCall, ...]:
        chunker = ClauseChunker()
        calls: tuple[ToolCall, ...] = ()
        if self.timing.llm_start is None:
            self.timing.llm_start = self._deps.clock()
        stream = llm.stream(request)
        try:
            async for event in stream:
                if isinstance(event, TextDelta):
                    self._first_token()
                    for text in chunker.push(event.text):
                        self._say(text)
                elif isinstance(event, ToolCallsRequested):
                    self._first_token()
                    calls = event.calls
        finally:
            await aclose(stream)
        rest = chunker.flush()
        if rest is not None:
            self._say(rest)
        return calls

    def _first_token(self) -> None:
        if self.timing.llm_first_token is None:
            self.timing.llm_first_token = self._deps.clock()

    def _say_text(self, text: str, *, fixed: bool) -> None:
        for clause in split_clauses(text):
            self._say(clause, fixed=fixed)

    def _say(self, text: str, *, fixed: bool = False) -> None:
        if self.timing.first_clause is None:
            self.timing.first_clause = self._deps.clock()
        clause = Clause(text, fixed=fixed, round=len(self._rounds) - 1)
        self._said.append(clause)
        self._speech.say(clause)

    def _new_round(self) -> _Round:
        self._rounds.append(_Round())
        return self._rounds[-1]

    # --- tools ------------------------------------------------------------------------------

    async def _run_tools(self, calls: tuple[ToolCall, ...]) -> list[ToolOutcome]:
        journal = self._deps.journal
        for call in calls:
            args = call.arguments
            journal.record(journal.new_item("tool_call", call.name, id=call.id, arguments=args))
            journal.emit("tool.call", id=call.id, name=call.name, arguments=args)
        task = asyncio.ensure_future(self._deps.tools.run_all(calls))
        try:
            done, _ = await asyncio.wait([task], timeout=self._deps.tool_filler_after_s)
            if not done:
                self._say(self._deps.limits.tool_filler_message, fixed=True)
            return await task
        finally:
            task.cancel()

    async def _act(self, round_: _Round) -> bool:
        """Carry out the first action the tools asked for; True when the response is done."""
        index, action = next(
            ((i, o.action) for i, o in enumerate(round_.outcomes) if o.action is not None),
            (None, None),
        )
        if index is None or action is None:
            return False
        self.closing = True
        if isinstance(action, EndCall):
            if not self._said:
                self._say(self._deps.limits.goodbye_message, fixed=True)
            self._action = action
            return True
        if not self._said:
            self._say(self._deps.limits.tool_filler_message, fixed=True)
        await self._speech.drain()
        failure = await self._transfer(action)
        if failure is None:
            self._action = action
            return True
        self.closing = False
        outcome = round_.outcomes[index]
        round_.outcomes[index] = dataclasses.replace(
            outcome, ok=False, content=error_content(failure), action=None
        )
        return False

    async def _transfer(self, action: Transfer) -> str | None:
        try:
            await self._deps.transfer(action.number)
        except TransferUnsupported:
            return _NO_TRANSFER
        except Exception as exc:
            logger.warning("response %s: transfer failed: %s", self.label, exc)
            return "the transfer failed"
        return None

    def _record_results(self, round_: _Round) -> None:
        journal = self._deps.journal
        for outcome in round_.outcomes:
            call = outcome.call
            data = {"id": call.id, "ok": outcome.ok, "duration_ms": round(outcome.duration_ms)}
            journal.record(journal.new_item("tool_result", outcome.content, name=call.name, **data))
            journal.emit("tool.result", name=call.name, content=outcome.content, **data)

    # --- speaking and settling --------------------------------------------------------------

    def _new_speech(self) -> Speech:
        deps = self._deps
        return Speech(
            self.utterance,
            deps.playout,
            tts=deps.sessions.tts,
            lines=deps.lines,
            gate=self.gate,
            clock=deps.clock,
            on_clause=self._on_clause,
        )

    def _on_clause(self, clause: Clause) -> None:
        self._begun.append(clause)
        journal = self._deps.journal
        if self._item is None:
            self._item = journal.new_item("agent", clause.text, response=self.label, kind=self.kind)
        else:
            self._item.text = self.utterance.text
        journal.record(self._item)
        journal.emit("agent.text", response=self.label, text=clause.text)

    def _finish(self, *, interrupted: bool) -> None:
        self._finished = True
        heard_samples = self.utterance.heard if interrupted else self.utterance.sent
        self._commit(heard_samples)
        if self._item is not None:
            self._item.text = self.utterance.text
            self._item.interrupted = interrupted
            self._item.heard_text = split_heard(self.utterance.spans, heard_samples)[0]
            self._deps.journal.record(self._item)
        if self.turn is not None:
            self.timing.tts_start = self._speech.tts_start
            self.timing.tts_first_byte = self._speech.tts_first_byte
            self.timing.first_audio = self.utterance.first_audio_at
            self._deps.journal.metrics(
                turn_metrics(self.turn, self.timing, interrupted=interrupted)
            )

    def _commit(self, heard_samples: int) -> None:
        conversation = self._deps.conversation
        for index, round_ in enumerate(self._rounds):
            spans = [
                span
                for span, clause in zip(self.utterance.spans, self._begun, strict=True)
                if clause.round == index
            ]
            heard = _heard_text(spans, heard_samples)
            if round_.calls:
                conversation.add(self._assistant_message(round_, heard))
                done = {outcome.call.id: outcome for outcome in round_.outcomes}
                for call in round_.calls:
                    outcome = done.get(call.id)
                    if outcome is None:
                        outcome = ToolOutcome(
                            call, ok=False, content=error_content(_CANCELLED_TOOL)
                        )
                    conversation.add(_tool_message(outcome))
            elif heard and self._continues_previous:
                conversation.extend_last_agent_message(heard)
            elif heard:
                conversation.add(ChatMessage(role="assistant", content=heard))

    def _round_text(self, round_: _Round) -> str:
        index = self._rounds.index(round_)
        return " ".join(clause.text for clause in self._said if clause.round == index)

    @staticmethod
    def _assistant_message(round_: _Round, content: str) -> ChatMessage:
        return ChatMessage(role="assistant", content=content, tool_calls=round_.calls)


def split_clauses(text: str) -> list[str]:
    """A fixed text cut into the clauses it is spoken (and cached) as."""
    chunker = ClauseChunker()
    clauses = chunker.push(text)
    rest = chunker.flush()
    return [*clauses, rest] if rest is not None else clauses


def _heard_text(spans: Sequence[ClauseSpan], heard_samples: int) -> str:
    return split_heard(spans, heard_samples)[0]


def _tool_message(outcome: ToolOutcome) -> ChatMessage:
    call = outcome.call
    return ChatMessage(role="tool", content=outcome.content, tool_call_id=call.id, name=call.name)


def _open_gate() -> asyncio.Event:
    gate = asyncio.Event()
    gate.set()
    return gate


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error that broke a task group, preferring a transport failure."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        error = stack.pop()
        if isinstance(error, BaseExceptionGroup):
            stack.extend(reversed(error.exceptions))
        else:
            leaves.append(error)
    return next((e for e in leaves if isinstance(e, PlayoutError)), leaves[0])
