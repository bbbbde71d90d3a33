"""What a response says: a fixed line, or an LLM reply that may call tools.

`FixedLine` speaks a known text (greeting, re-prompt, goodbye, apology, or the remainder of an
interrupted message, which continues the agent's last message in the context). `LlmReply`
streams the LLM, cuts its text into clauses as it comes, and runs the tools it asks for
(only once its turn is confirmed: tools act on the world), feeding the results back, up to
`max_tool_rounds` requests.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence

from voxline.providers.base import (
    ChatMessage,
    LlmRequest,
    LlmSession,
    TextDelta,
    ToolCall,
    ToolCallsRequested,
)
from voxline.runtime.chunker import ClauseChunker
from voxline.runtime.events import ToolCalled, ToolResult
from voxline.runtime.response import Response, Round, assistant_message, tool_message
from voxline.runtime.speech import aclose
from voxline.runtime.transport import TransferUnsupported
from voxline.tools import EndCall, ToolOutcome, Transfer
from voxline.tools.outcome import error_content

logger = logging.getLogger(__name__)

_NO_TRANSFER = "transfer is not possible on this channel"


class FixedLine:
    """Speaks `text`; `cached` lines are kept in (and played from) the line cache."""

    def __init__(self, text: str, *, cached: bool = True, continues: bool = False) -> None:
        self._text = text
        self._cached = cached
        self.continues_previous = continues

    async def produce(self, response: Response) -> None:
        response.new_round()
        response.say_text(self._text, fixed=self._cached)


class LlmReply:
    """Answers the conversation plus `pending` (the caller's words when speculative)."""

    continues_previous = False

    def __init__(self, pending: Sequence[ChatMessage] = ()) -> None:
        self._pending = tuple(pending)

    async def produce(self, response: Response) -> None:
        deps = response.deps
        base = deps.conversation.messages(self._pending)
        llm = await deps.connections.llm()
        tools = deps.tools.definitions()
        history: list[ChatMessage] = []
        for _ in range(deps.max_tool_rounds):
            round_ = response.new_round()
            request = LlmRequest(messages=(*base, *history), tools=tools)
            calls = await _stream(response, llm, request)
            if not calls:
                return
            round_.calls = calls
            await response.confirmed()  # tools act on the world: never for an unconfirmed turn
            round_.outcomes = await _run_tools(response, calls)
            done = await _act(response, round_)
            _record_results(response, round_)
            if done:
                return
            history.append(assistant_message(round_, response.round_text(round_)))
            history.extend(tool_message(outcome) for outcome in round_.outcomes)
        logger.warning(
            "response %s: still calling tools after %d rounds",
            response.label,
            deps.max_tool_rounds,
        )
        response.new_round()
        response.say(deps.limits.apology_message, fixed=True)


async def _stream(response: Response, llm: LlmSession, request: LlmRequest) -> tuple[ToolCall, ...]:
    timing = response.timing
    clock = response.deps.clock
    chunker = ClauseChunker()
    calls: tuple[ToolCall, ...] = ()
    if timing.llm_start is None:
        timing.llm_start = clock()
    stream = llm.stream(request)
    try:
        async for event in stream:
            if isinstance(event, TextDelta):
                if timing.llm_first_token is None:
                    timing.llm_first_token = clock()
                for text in chunker.push(event.text):
                    response.say(text)
            elif isinstance(event, ToolCallsRequested):
                if timing.llm_first_token is None:
                    timing.llm_first_token = clock()
                calls = event.calls
    finally:
        await aclose(stream)
    rest = chunker.flush()
    if rest is not None:
        response.say(rest)
    return calls


async def _run_tools(response: Response, calls: tuple[ToolCall, ...]) -> list[ToolOutcome]:
    deps = response.deps
    journal = deps.journal
    for call in calls:
        args = call.arguments
        journal.record(journal.new_item("tool_call", call.name, id=call.id, arguments=args))
        journal.emit(ToolCalled(id=call.id, name=call.name, arguments=args))
    task = asyncio.ensure_future(deps.tools.run_all(calls))
    try:
        done, _ = await asyncio.wait([task], timeout=deps.tool_filler_after_s)
        if not done:
            response.say(deps.limits.tool_filler_message, fixed=True)
        return await task
    finally:
        task.cancel()


async def _act(response: Response, round_: Round) -> bool:
    """Carry out the first action the tools asked for; True when the response is done."""
    index, action = next(
        ((i, o.action) for i, o in enumerate(round_.outcomes) if o.action is not None),
        (None, None),
    )
    if index is None or action is None:
        return False
    limits = response.deps.limits
    response.close_call()
    if isinstance(action, EndCall):
        if not response.said_anything:
            response.say(limits.goodbye_message, fixed=True)
        response.action = action
        return True
    if not response.said_anything:
        response.say(limits.tool_filler_message, fixed=True)
    await response.drain()
    failure = await _transfer(response, action)
    if failure is None:
        response.action = action
        return True
    response.reopen_call()
    outcome = round_.outcomes[index]
    round_.outcomes[index] = dataclasses.replace(
        outcome, ok=False, content=error_content(failure), action=None
    )
    return False


async def _transfer(response: Response, action: Transfer) -> str | None:
    try:
        await response.deps.transfer(action.number)
    except TransferUnsupported:
        return _NO_TRANSFER
    except Exception as exc:
        logger.warning("response %s: transfer failed: %s", response.label, exc)
        return "the transfer failed"
    return None


def _record_results(response: Response, round_: Round) -> None:
    journal = response.deps.journal
    for outcome in round_.outcomes:
        call = outcome.call
        duration_ms = round(outcome.duration_ms)
        journal.record(
            journal.new_item(
                "tool_result",
                outcome.content,
                name=call.name,
                id=call.id,
                ok=outcome.ok,
                duration_ms=duration_ms,
            )
        )
        journal.emit(
            ToolResult(
                id=call.id,
                name=call.name,
                ok=outcome.ok,
                content=outcome.content,
                duration_ms=duration_ms,
            )
        )
