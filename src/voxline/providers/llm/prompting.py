"""Turn a chat request into one prompt string for a local model, and its output back into events.

Two formats:
- `TranscriptFormat`, for base models without a chat template (the bundled Gemma 3 270M):
  the system prompt as a preamble, then one "Caller: ..." / "Agent: ..." line per turn,
  ending with "Agent:"; generation stops at the end of that line. A base model cannot be
  trusted to emit structured tool calls, so this format supports no tools: tool definitions,
  tool calls and tool results are left out of the transcript.
- `ChatTemplateFormat`, for models whose GGUF carries a chat template: the model's own
  template renders the conversation. Tools are described in the system prompt, and a reply
  that is only a JSON object `{"tool": name, "arguments": {...}}` (or a list of them) is a
  tool call; `ToolCallFilter` holds such output back so it is never spoken.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from voxline.providers.base import ChatMessage, ProviderError, ToolCall, ToolDefinition

CALLER_LABEL = "Caller"
AGENT_LABEL = "Agent"
# Chat templates commonly require the first turn to be the user's; a call opens with the agent.
CALL_CONNECTED = "(The call has connected.)"

_WHITESPACE = re.compile(r"\s+")
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Prompt:
    """A rendered prompt; `special` says whether special-token text in it is to be parsed."""

    text: str
    stop: tuple[str, ...]
    special: bool


class PromptFormat(Protocol):
    supports_tools: bool

    def render(
        self, system: str, turns: Sequence[ChatMessage], tools: Sequence[ToolDefinition]
    ) -> Prompt: ...


class TranscriptFormat:
    """Base-model prompting: a call transcript to be continued by the agent's next line."""

    supports_tools = False

    def render(
        self, system: str, turns: Sequence[ChatMessage], tools: Sequence[ToolDefinition]
    ) -> Prompt:
        lines = [system.strip(), ""] if system.strip() else []
        for message in turns:
            text = _one_line(message.content)
            if not text:
                continue
            if message.role == "user":
                lines.append(f"{CALLER_LABEL}: {text}")
            elif message.role == "assistant":
                lines.append(f"{AGENT_LABEL}: {text}")
        lines.append(f"{AGENT_LABEL}:")
        return Prompt("\n".join(lines), stop=("\n", f"{CALLER_LABEL}:"), special=False)


RenderChat = Callable[[list[dict[str, str]]], tuple[str, tuple[str, ...]]]
"""Renders role/content messages with a model's chat template: (prompt, stop strings)."""


class ChatTemplateFormat:
    """Chat-model prompting through the model's own template (`render`)."""

    supports_tools = True

    def __init__(self, render: RenderChat) -> None:
        self._render = render

    def render(
        self, system: str, turns: Sequence[ChatMessage], tools: Sequence[ToolDefinition]
    ) -> Prompt:
        instructions = "\n\n".join(part for part in (system.strip(), describe_tools(tools)) if part)
        conversation = _alternating(turns)
        with_system = [{"role": "system", "content": instructions}] if instructions else []
        try:
            text, stop = self._render(with_system + conversation)
        except Exception:
            # Some templates reject a system role: fold the instructions into the first turn.
            if not instructions:
                raise
            first = conversation[0]
            folded = {"role": "user", "content": f"{instructions}\n\n{first['content']}"}
            text, stop = self._render([folded, *conversation[1:]])
        return Prompt(text, stop=stop, special=True)


def split_system(messages: Sequence[ChatMessage]) -> tuple[str, list[ChatMessage]]:
    """The system instructions (all system messages joined) and the conversation turns."""
    system = "\n\n".join(m.content.strip() for m in messages if m.role == "system")
    return system, [m for m in messages if m.role != "system"]


def fit_prompt(
    prompt_format: PromptFormat,
    messages: Sequence[ChatMessage],
    tools: Sequence[ToolDefinition],
    tokenize: Callable[[Prompt], list[int]],
    budget: int,
) -> tuple[Prompt, list[int]]:
    """Render `messages`, dropping the oldest turns until the prompt fits in `budget` tokens.

    The system instructions and the latest turn are always kept; if even they do not fit,
    ProviderError says so.
    """
    system, turns = split_system(messages)
    for start in range(max(1, len(turns))):
        prompt = prompt_format.render(system, turns[start:], tools)
        tokens = tokenize(prompt)
        if len(tokens) <= budget:
            return prompt, tokens
    raise ProviderError(
        f"the prompt needs {len(tokens)} tokens but only {budget} are free in the model's "
        "context: raise context_tokens, lower max_tokens or shorten the system prompt"
    )


def describe_tools(tools: Sequence[ToolDefinition]) -> str:
    """Instructions that teach a chat model the tools and the JSON form of a tool call."""
    if not tools:
        return ""
    lines = ["You can use these tools:"]
    for tool in tools:
        schema = json.dumps(tool.parameters, separators=(",", ":"))
        lines.append(f"- {tool.name}: {tool.description} Arguments (JSON Schema): {schema}")
    lines.append(
        "To use a tool, reply with only this JSON and nothing else: "
        '{"tool": "<tool name>", "arguments": {<arguments>}}. '
        "Otherwise reply in plain words, as spoken on the phone."
    )
    return "\n".join(lines)


def parse_tool_calls(text: str, tools: Sequence[ToolDefinition]) -> tuple[ToolCall, ...] | None:
    """The tool calls `text` consists of, or None when it is not (only) valid tool-call JSON."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1)
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        return None
    items = parsed if isinstance(parsed, list) else [parsed]
    known = {tool.name for tool in tools}
    calls: list[ToolCall] = []
    for item in items:
        if not isinstance(item, dict) or item.get("tool") not in known:
            return None
        arguments = item.get("arguments", {})
        if not isinstance(arguments, dict):
            return None
        calls.append(
            ToolCall(id=f"call_{secrets.token_hex(6)}", name=item["tool"], arguments=arguments)
        )
    return tuple(calls) or None


class ToolCallFilter:
    """Passes reply text through as it streams, unless the reply starts like JSON: then it is
    held back to the end and becomes tool calls if it parses as such, else plain text."""

    def __init__(self, tools: Sequence[ToolDefinition]) -> None:
        self._tools = tuple(tools)
        self._held = ""
        self._holding: bool | None = None if self._tools else False

    def feed(self, text: str) -> str:
        """The part of `text` that can be spoken now."""
        if self._holding is False:
            return text
        self._held += text
        start = self._held.lstrip()
        if not start:
            return ""
        self._holding = start.startswith(("{", "[", "`"))
        if self._holding:
            return ""
        released, self._held = self._held, ""
        return released

    def finish(self) -> tuple[str, tuple[ToolCall, ...]]:
        """At the end of the reply: (text still to speak, tool calls requested)."""
        held, self._held = self._held, ""
        if not self._holding:
            return held, ()
        calls = parse_tool_calls(held, self._tools)
        return ("", calls) if calls else (held, ())


def _one_line(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def _alternating(turns: Sequence[ChatMessage]) -> list[dict[str, str]]:
    """User/assistant turns, strictly alternating and starting with the user, as most chat
    templates demand. Tool calls and results are written out as text."""
    conversation: list[dict[str, str]] = []
    for message in turns:
        role, content = _as_chat_turn(message)
        if not content:
            continue
        if conversation and conversation[-1]["role"] == role:
            conversation[-1]["content"] += "\n\n" + content
        else:
            conversation.append({"role": role, "content": content})
    if not conversation or conversation[0]["role"] != "user":
        conversation.insert(0, {"role": "user", "content": CALL_CONNECTED})
    return conversation


def _as_chat_turn(message: ChatMessage) -> tuple[str, str]:
    if message.role == "tool":
        label = f"Result of {message.name}" if message.name else "Tool result"
        return "user", f"{label}: {message.content.strip()}"
    if message.role == "assistant":
        calls = [
            json.dumps({"tool": call.name, "arguments": call.arguments})
            for call in message.tool_calls
        ]
        return "assistant", "\n".join(part for part in (message.content.strip(), *calls) if part)
    return "user", message.content.strip()
