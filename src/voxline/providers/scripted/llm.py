"""Scripted language model: answers by regex rules, streaming word by word at a set speed.

A turn is decided by the last message: a tool result gets the `then_say` of the rule whose
tool call produced it ('{result}' replaced by the result); otherwise the first rule whose
`match` is found in the last user text says `say` and then calls its tool; no rule matching
gives `default_reply`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from voxline.agent_spec import ScriptedLlm, ScriptedRule
from voxline.providers.base import (
    ChatMessage,
    LlmEvent,
    LlmRequest,
    ProviderError,
    TextDelta,
    ToolCall,
    ToolCallsRequested,
    Usage,
)


class ScriptedLanguageModel:
    """A LanguageModel following `spec.rules`; its sessions share the compiled rules."""

    name = "scripted"

    def __init__(self, spec: ScriptedLlm) -> None:
        self.spec = spec
        self._patterns = tuple(re.compile(rule.match, re.IGNORECASE) for rule in spec.rules)

    async def open(self) -> ScriptedLlmSession:
        return ScriptedLlmSession(self.spec, self._patterns)


class ScriptedLlmSession:
    """One call's scripted model. Tool call ids (`call_1`, `call_2`, ...) are unique per session."""

    def __init__(self, spec: ScriptedLlm, patterns: tuple[re.Pattern[str], ...]) -> None:
        self._spec = spec
        self._patterns = patterns
        self._first_token_s = spec.first_token_ms / 1000
        self._token_interval_s = 1 / spec.tokens_per_second
        self._calls_made = 0
        self._rule_of_call: dict[str, ScriptedRule] = {}
        self._closed = False

    async def stream(self, request: LlmRequest) -> AsyncIterator[LlmEvent]:
        if self._closed:
            raise ProviderError("the scripted LLM session is closed")
        text, rule = self._reply(request.messages)
        words = text.split()
        loop = asyncio.get_running_loop()
        first_at = loop.time() + self._first_token_s
        # Deadlines from one start time, so sleeps do not accumulate drift.
        for index, word in enumerate(words):
            await asyncio.sleep(max(0.0, first_at + index * self._token_interval_s - loop.time()))
            yield TextDelta(word if index == 0 else " " + word)
        if rule is not None and rule.tool is not None:
            if not words:
                await asyncio.sleep(max(0.0, first_at - loop.time()))
            self._calls_made += 1
            call = ToolCall(
                id=f"call_{self._calls_made}",
                name=rule.tool.name,
                arguments=dict(rule.tool.arguments),
            )
            self._rule_of_call[call.id] = rule
            yield ToolCallsRequested(calls=(call,))
        yield Usage(input_tokens=_count_tokens(request.messages), output_tokens=len(words))

    async def aclose(self) -> None:
        self._closed = True

    def _reply(self, messages: tuple[ChatMessage, ...]) -> tuple[str, ScriptedRule | None]:
        """The text to say and, for a fresh user turn, the rule that matched (its tool follows)."""
        if messages and messages[-1].role == "tool":
            result = messages[-1]
            rule = self._rule_for_result(messages, result.tool_call_id)
            if rule is None or rule.then_say is None:
                return "", None
            return rule.then_say.replace("{result}", result.content), None
        user_text = next((m.content for m in reversed(messages) if m.role == "user"), "")
        for rule, pattern in zip(self._spec.rules, self._patterns, strict=True):
            if pattern.search(user_text):
                return rule.say or "", rule
        return self._spec.default_reply, None

    def _rule_for_result(
        self, messages: tuple[ChatMessage, ...], call_id: str | None
    ) -> ScriptedRule | None:
        if call_id in self._rule_of_call:
            return self._rule_of_call[call_id]
        # A call this session did not issue (a resumed history): go by the tool's name.
        for message in reversed(messages):
            for call in message.tool_calls:
                if call.id == call_id:
                    return next(
                        (r for r in self._spec.rules if r.tool and r.tool.name == call.name), None
                    )
        return None


def _count_tokens(messages: tuple[ChatMessage, ...]) -> int:
    # Words are a fair stand-in for tokens at this level of make-believe.
    return sum(len(message.content.split()) for message in messages)
