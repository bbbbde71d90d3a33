"""Anthropic's Messages API, streamed (Claude).

Spoken directly over httpx, like the OpenAI-compatible provider (its docstring says why).
The history maps the way the API wants it: system messages become the top-level `system`,
tool calls `tool_use` blocks, tool results `tool_result` blocks of a user message, and
consecutive messages of one role merge into one. With `prompt_caching` the system prompt
and the history up to the newest message are marked cacheable, so each turn reuses the
previous turn's prefix (a sooner first token; below the model's minimum length it is a no-op).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from voxline.agent_spec import AnthropicLlm
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
from voxline.providers.http import (
    HostedModel,
    ProviderClient,
    error_text,
    first_within,
    object_or_empty,
    parse_object,
    redact,
    sse_events,
)

API_VERSION = "2023-06-01"


class AnthropicLanguageModel(HostedModel):
    """A LanguageModel on the Messages API; `api_key` None sends no x-api-key (a proxy)."""

    name = "anthropic"

    def __init__(self, spec: AnthropicLlm, api_key: str | None) -> None:
        self.spec = spec
        host = urlsplit(spec.base_url).hostname or spec.base_url
        headers = {**spec.extra_headers, "anthropic-version": API_VERSION}
        if api_key:
            headers["x-api-key"] = api_key
        self.client = ProviderClient(
            spec.base_url,
            headers,
            vendor="Anthropic" if host == "api.anthropic.com" else f"the Anthropic API at {host}",
            warm_path="v1/models",
            first_token_s=spec.first_token_timeout_ms / 1000,
            secrets=(api_key,) if api_key else (),
        )

    async def open(self) -> AnthropicSession:
        self.client.prewarm()
        return AnthropicSession(self.spec, self.client)


class AnthropicSession:
    """One call's use of the shared client; each `stream` is one streamed message."""

    def __init__(self, spec: AnthropicLlm, client: ProviderClient) -> None:
        self._spec = spec
        self._client = client
        self._closed = False

    async def stream(self, request: LlmRequest) -> AsyncGenerator[LlmEvent, None]:
        if self._closed:
            raise ProviderError("the Anthropic LLM session is closed")
        client = self._client
        deadline = asyncio.get_running_loop().time() + self._spec.first_token_timeout_ms / 1000
        body = request_body(self._spec, request)
        reply = _Reply(client.vendor)
        async with client.stream("v1/messages", body, deadline=deadline) as response:
            events = first_within(_events(response, client), _has_output, deadline, client.vendor)
            async with contextlib.aclosing(events):
                async for event in events:
                    text = reply.add(event)
                    if text:
                        yield TextDelta(text)
        calls = reply.tool_calls()
        if calls:
            yield ToolCallsRequested(calls)
        yield reply.usage()

    async def aclose(self) -> None:
        self._closed = True


def request_body(spec: AnthropicLlm, request: LlmRequest) -> dict[str, Any]:
    """The streamed Messages API request for `request`."""
    body: dict[str, Any] = {
        "model": spec.model,
        "max_tokens": spec.max_tokens,
        "messages": wire_messages(request.messages),
        "stream": True,
    }
    system = "\n\n".join(
        message.content.strip()
        for message in request.messages
        if message.role == "system" and message.content.strip()
    )
    if system:
        block: dict[str, Any] = {"type": "text", "text": system}
        if spec.prompt_caching:
            block["cache_control"] = {"type": "ephemeral"}
        body["system"] = [block]
    if request.tools:
        body["tools"] = [
            {"name": tool.name, "description": tool.description, "input_schema": tool.parameters}
            for tool in request.tools
        ]
    if spec.temperature is not None:
        body["temperature"] = spec.temperature
    if spec.prompt_caching and body["messages"]:
        last = body["messages"][-1]["content"][-1]
        last["cache_control"] = {"type": "ephemeral"}
    return body


def wire_messages(messages: tuple[ChatMessage, ...]) -> list[dict[str, Any]]:
    """The non-system history as Messages API messages, same-role neighbours merged."""
    wire: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role, blocks = _blocks(message)
        if not blocks:
            continue  # the API refuses empty content
        if wire and wire[-1]["role"] == role:
            wire[-1]["content"].extend(blocks)
        else:
            wire.append({"role": role, "content": blocks})
    return wire


def _blocks(message: ChatMessage) -> tuple[str, list[dict[str, Any]]]:
    if message.role == "tool":
        if message.tool_call_id is None:
            raise ProviderError("a tool result without a tool_call_id cannot be sent")
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id}
        if message.content:
            result["content"] = message.content
        return "user", [result]
    # The API refuses whitespace-only text blocks and a reply ending in whitespace.
    text = message.content.rstrip() if message.role == "assistant" else message.content
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text.strip() else []
    blocks += [
        {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
        for call in message.tool_calls
    ]
    return message.role, blocks


async def _events(
    response: httpx.Response, client: ProviderClient
) -> AsyncIterator[dict[str, Any]]:
    """The stream's events up to `message_stop`; an `error` event or a stream cut short
    raises ProviderError."""
    async for sse in sse_events(response.aiter_lines()):
        event = parse_object(sse.data, f"an event from {client.vendor}")
        kind = event.get("type", sse.event)
        if kind == "error":
            message = redact(error_text(event) or "unknown error", client.secrets)
            raise ProviderError(f"{client.vendor} failed mid-reply: {message}")
        yield event
        if kind == "message_stop":
            return
    raise ProviderError(f"{client.vendor} ended its stream before message_stop")


def _has_output(event: dict[str, Any]) -> bool:
    if event.get("type") == "content_block_delta":
        return True
    block = event.get("content_block")
    return (
        event.get("type") == "content_block_start"
        and isinstance(block, dict)
        and (block.get("type") == "tool_use" or bool(block.get("text")))
    )


class _Reply:
    """The state of one streamed message: tool_use blocks by index (their input arriving as
    JSON fragments) and the token counts."""

    def __init__(self, vendor: str) -> None:
        self._vendor = vendor
        self._tools: dict[int, tuple[str, str, list[str]]] = {}
        self._input_tokens = 0
        self._output_tokens = 0

    def add(self, event: dict[str, Any]) -> str:
        """Take one event; return the text it adds to the reply (maybe empty)."""
        kind = event.get("type")
        index = event.get("index")
        if kind == "message_start":
            message = event.get("message")
            self._count(message.get("usage") if isinstance(message, dict) else None)
        elif kind == "message_delta":
            self._count(event.get("usage"))
        elif kind == "content_block_start" and isinstance(index, int):
            block = object_or_empty(event.get("content_block"))
            if block.get("type") == "tool_use":
                self._tools[index] = (str(block.get("id", "")), str(block.get("name", "")), [])
            elif block.get("type") == "text":
                return str(block.get("text") or "")
        elif kind == "content_block_delta" and isinstance(index, int):
            delta = object_or_empty(event.get("delta"))
            if delta.get("type") == "text_delta":
                return str(delta.get("text") or "")
            if delta.get("type") == "input_json_delta" and index in self._tools:
                self._tools[index][2].append(str(delta.get("partial_json") or ""))
        return ""

    def tool_calls(self) -> tuple[ToolCall, ...]:
        calls = []
        for index in sorted(self._tools):
            call_id, name, fragments = self._tools[index]
            if not call_id or not name:
                raise ProviderError(f"{self._vendor} sent a tool_use block without id or name")
            text = "".join(fragments).strip() or "{}"
            arguments = parse_object(text, f"the input {self._vendor} sent for {name!r}")
            calls.append(ToolCall(id=call_id, name=name, arguments=arguments))
        return tuple(calls)

    def usage(self) -> Usage:
        return Usage(input_tokens=self._input_tokens, output_tokens=self._output_tokens)

    def _count(self, usage: object) -> None:
        if not isinstance(usage, dict):
            return
        # Cached prompt tokens are counted apart from `input_tokens`; the prompt is all three.
        keys = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        counts = [usage.get(key) for key in keys]
        if any(isinstance(count, int) for count in counts):
            self._input_tokens = sum(count for count in counts if isinstance(count, int))
        output = usage.get("output_tokens")
        if isinstance(output, int):
            self._output_tokens = output
