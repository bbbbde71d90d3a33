"""One agent message as one cancellable unit: a producer's clauses -> speech -> what was heard.

A response owns the speech pipeline every message shares; what it says comes from its
producer (`runtime.producers`): an LLM reply with tools, or a fixed line (greeting, re-prompt,
goodbye...). A speculative response is prepared behind a closed gate: it may think and
synthesize but nothing leaves it (no audio, no transcript item, no tool call, no context)
until `confirm()` opens it. Once open it records the agent item as each clause starts to be
heard.

It ends in one of two ways. `run()` returns after everything was played, and commits its
messages to the conversation. Or the runtime cancels it (barge-in) and, after clearing the
playout, calls `interrupted()`, which commits only the words the caller heard.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from voxline.agent_spec import Limits
from voxline.providers.base import ChatMessage, ToolCall
from voxline.runtime.chunker import ClauseChunker
from voxline.runtime.context import Conversation
from voxline.runtime.events import AgentInterrupted, AgentText
from voxline.runtime.heard import ClauseSpan, split_heard
from voxline.runtime.journal import Journal
from voxline.runtime.line_cache import VoiceLines
from voxline.runtime.metrics import TurnTiming, turn_metrics
from voxline.runtime.phase import CallLifecycle
from voxline.runtime.playout import Playout, PlayoutError, Utterance
from voxline.runtime.provider_connections import ProviderConnections
from voxline.runtime.recording import TranscriptItem
from voxline.runtime.speech import Clause, Speech
from voxline.tools import ToolAction, ToolOutcome, ToolRunner
from voxline.tools.outcome import error_content

logger = logging.getLogger(__name__)

MAX_TOOL_ROUNDS = 5
TOOL_FILLER_AFTER_S = 1.0
_CANCELLED_TOOL = "cancelled: the caller interrupted before the tool finished"


@dataclass(frozen=True, slots=True)
class ResponseDeps:
    """What every response of a call shares."""

    conversation: Conversation
    playout: Playout
    journal: Journal
    connections: ProviderConnections
    tools: ToolRunner
    lines: VoiceLines
    limits: Limits
    lifecycle: CallLifecycle
    clock: Callable[[], float]
    transfer: Callable[[str], Awaitable[None]]
    """Hand the call over (raises `TransferUnsupported` where there is no phone line)."""
    tool_filler_after_s: float = TOOL_FILLER_AFTER_S
    max_tool_rounds: int = MAX_TOOL_ROUNDS


@dataclass(slots=True)
class Round:
    """One producer step (one LLM request): the tools it called and their outcomes."""

    index: int
    calls: tuple[ToolCall, ...] = ()
    outcomes: list[ToolOutcome] = field(default_factory=list)


@dataclass(slots=True)
class _Said:
    """A clause queued for speech, and its span of the message once it started playing."""

    clause: Clause
    span: ClauseSpan | None = None


class Producer(Protocol):
    """What a response says: it calls `response.say` (and, for LLM replies, runs tools)."""

    continues_previous: bool
    """Its words extend the agent's last message in the context (a resumed remainder)."""

    async def produce(self, response: Response) -> None: ...


class Response:
    """See the module docstring. `kind` labels the agent item ('reply', 'greeting', ...)."""

    def __init__(
        self,
        deps: ResponseDeps,
        label: str,
        producer: Producer,
        *,
        kind: str = "reply",
        speculative: bool = False,
        turn: int | None = None,
        timing: TurnTiming | None = None,
    ) -> None:
        self.label = label
        self.kind = kind
        self.deps = deps
        self.timing = timing if timing is not None else TurnTiming()
        self.utterance = Utterance(label)
        self.action: ToolAction | None = None
        """What the reply decided to do once heard (end the call, transfer it)."""
        self._turn = turn
        self._producer = producer
        self._gate = asyncio.Event()
        if not speculative:
            self._gate.set()
        self._rounds: list[Round] = []
        self._said: list[_Said] = []
        self._finished = False
        self._item: TranscriptItem | None = None
        self._closed_call = False
        self._speech = self._new_speech()

    @property
    def spoken(self) -> bool:
        """Some of its audio has been sent."""
        return self.utterance.first_audio_at is not None

    def confirm(self, turn: int, caller: TurnTiming) -> None:
        """A speculative response answers caller turn `turn` after all: let it be heard, and
        account it with the caller turn's timing."""
        self._turn = turn
        self.timing.adopt_caller(caller)
        self._gate.set()

    async def confirmed(self) -> None:
        """Wait until the response may act on the world (its turn was confirmed)."""
        await self._gate.wait()

    async def run(self) -> ToolAction | None:
        """Think, speak and wait until heard; the action (end call, transfer) it decided on.
        Provider failures are spoken as the agent's apology; only `PlayoutError` (and
        cancellation) propagate."""
        try:
            await self._pipeline(self._producer.produce)
        except PlayoutError:
            raise
        except Exception as exc:
            logger.warning("response %s failed, apologizing: %s", self.label, exc)
            self.action = None
            self.reopen_call()
            self._said = [said for said in self._said if said.span is not None]
            self._speech = self._new_speech()
            await self._pipeline(self._apologize)
        self._finish(interrupted=False)
        return self.action

    def interrupted(self) -> str:
        """Settle a cancelled response after the playout was cleared: commit what was heard,
        mark the agent item interrupted. Returns the text the caller did not hear."""
        if self._finished:
            return ""
        heard, unheard = self.utterance.split_heard()
        not_begun = [said.clause.text for said in self._said if said.span is None]
        rest = " ".join([unheard, *not_begun]).strip()
        if self._item is not None:
            self.deps.journal.emit(
                AgentInterrupted(response=self.label, heard_text=heard, text=self._item.text)
            )
        self._finish(interrupted=True)
        return rest

    # --- for producers ----------------------------------------------------------------------

    def new_round(self) -> Round:
        self._rounds.append(Round(len(self._rounds)))
        return self._rounds[-1]

    def say(self, text: str, *, fixed: bool = False) -> None:
        """Queue a clause of the current round (`fixed` lines are cached by text)."""
        if self.timing.first_clause is None:
            self.timing.first_clause = self.deps.clock()
        clause = Clause(text, fixed=fixed, round=len(self._rounds) - 1)
        self._said.append(_Said(clause))
        self._speech.say(clause)

    def say_text(self, text: str, *, fixed: bool) -> None:
        """Queue a whole text, clause by clause."""
        for clause in split_clauses(text):
            self.say(clause, fixed=fixed)

    @property
    def said_anything(self) -> bool:
        return bool(self._said)

    def round_text(self, round_: Round) -> str:
        """What was queued to be said during `round_`."""
        return " ".join(s.clause.text for s in self._said if s.clause.round == round_.index)

    async def drain(self) -> None:
        """Wait until everything queued so far has been heard."""
        await self._speech.drain()

    def close_call(self) -> None:
        """This reply hands the call over or ends it: the caller is not heard from now on."""
        self._closed_call = True
        self.deps.lifecycle.close()

    def reopen_call(self) -> None:
        """The hand-over this reply began failed: the conversation goes on."""
        if self._closed_call:
            self._closed_call = False
            self.deps.lifecycle.reopen()

    # --- the pipeline -------------------------------------------------------------------------

    async def _pipeline(self, produce: Callable[[Response], Awaitable[None]]) -> None:
        speech = self._speech

        async def producer() -> None:
            try:
                await produce(self)
            finally:
                speech.end()

        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(speech.run())
                group.create_task(producer())
        except BaseExceptionGroup as errors:
            raise _first_error(errors) from None

    @staticmethod
    async def _apologize(response: Response) -> None:
        response.new_round()
        response.say(response.deps.limits.apology_message, fixed=True)

    def _new_speech(self) -> Speech:
        deps = self.deps
        return Speech(
            self.utterance,
            deps.playout,
            tts=deps.connections.tts,
            lines=deps.lines,
            gate=self._gate,
            clock=deps.clock,
            on_clause=self._on_clause,
        )

    def _on_clause(self, clause: Clause, span: ClauseSpan) -> None:
        said = next(s for s in self._said if s.clause is clause and s.span is None)
        said.span = span
        journal = self.deps.journal
        if self._item is None:
            self._item = journal.new_item("agent", clause.text, response=self.label, kind=self.kind)
        else:
            self._item.text = self.utterance.text
        journal.record(self._item)
        journal.emit(AgentText(response=self.label, text=clause.text))

    def _finish(self, *, interrupted: bool) -> None:
        self._finished = True
        heard_samples = self.utterance.heard if interrupted else self.utterance.sent
        self._commit(heard_samples)
        journal = self.deps.journal
        if self._item is not None:
            self._item.text = self.utterance.text
            self._item.interrupted = interrupted
            self._item.heard_text = split_heard(self.utterance.spans, heard_samples)[0]
            journal.record(self._item)
        if self._turn is not None:
            self.timing.tts_start = self._speech.tts_start
            self.timing.tts_first_byte = self._speech.tts_first_byte
            self.timing.first_audio = self.utterance.first_audio_at
            journal.metrics(turn_metrics(self._turn, self.timing, interrupted=interrupted))

    def _commit(self, heard_samples: int) -> None:
        conversation = self.deps.conversation
        for round_ in self._rounds:
            spans = [
                s.span for s in self._said if s.span is not None and s.clause.round == round_.index
            ]
            heard = split_heard(spans, heard_samples)[0]
            if round_.calls:
                conversation.add(assistant_message(round_, heard))
                done = {outcome.call.id: outcome for outcome in round_.outcomes}
                for call in round_.calls:
                    outcome = done.get(call.id)
                    if outcome is None:
                        outcome = ToolOutcome(
                            call, ok=False, content=error_content(_CANCELLED_TOOL)
                        )
                    conversation.add(tool_message(outcome))
            elif heard and self._producer.continues_previous:
                conversation.extend_last_agent_message(heard)
            elif heard:
                conversation.add(ChatMessage(role="assistant", content=heard))


def split_clauses(text: str) -> list[str]:
    """A fixed text cut into the clauses it is spoken (and cached) as."""
    chunker = ClauseChunker()
    clauses = chunker.push(text)
    rest = chunker.flush()
    return [*clauses, rest] if rest is not None else clauses


def assistant_message(round_: Round, content: str) -> ChatMessage:
    return ChatMessage(role="assistant", content=content, tool_calls=round_.calls)


def tool_message(outcome: ToolOutcome) -> ChatMessage:
    call = outcome.call
    return ChatMessage(role="tool", content=outcome.content, tool_call_id=call.id, name=call.name)


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
