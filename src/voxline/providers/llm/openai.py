"""OpenAI-compatible Chat Completions, streamed: OpenAI itself, Groq, Together, Fireworks,
Ollama, vLLM, llama.cpp server, LM Studio. One provider; a server is a `base_url`.

The protocol is spoken directly over httpx, not through the `openai` SDK: one endpoint is all
a call needs, and the SDK would add a heavy import, a pydantic object per streamed chunk and
retries with backoff of its own (on a call, a retry is silence; the next fallback is faster),
while its strict types fit the compatible servers less well than plain JSON does.

Each provider object keeps one keep-alive HTTP/1.1 client for all its calls; `open()` warms a
connection in the background (while the greeting plays), so a call's first request does not
pay for TCP and TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from voxline.agent_spec import OpenAiLlm
from voxline.providers.base import (
    ChatMessage,
    LlmEvent,
    LlmRequest,
    ProviderError,
    TextDelta,
    ToolCall,
    ToolCallsRequested,
    ToolDefinition,
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


class OpenAiLanguageModel(HostedModel):
    """A LanguageModel on an OpenAI-compatible server; `api_key` None sends no Authorization."""

    name = "openai"

    def __init__(self, spec: OpenAiLlm, api_key: str | None) -> None:
        self.spec = spec
        host = urlsplit(spec.base_url).hostname or spec.base_url
        headers = dict(spec.extra_headers)
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.client = ProviderClient(
            spec.base_url,
            headers,
            vendor="OpenAI" if host == "api.openai.com" else f"the LLM server at {host}",
            warm_path="models",
            first_token_s=spec.first_token_timeout_ms / 1000,
            secrets=(api_key,) if api_key else (),
        )

    async def open(self) -> OpenAiSession:
        self.client.prewarm()
        return OpenAiSession(self.spec, self.client)


class OpenAiSession:
    """One call's use of the shared client; each `stream` is one streamed completion."""

    def __init__(self, spec: OpenAiLlm, client: ProviderClient) -> None:
        self._spec = spec
        self._client = client
        self._closed = False

    async def stream(self, request: LlmRequest) -> AsyncGenerator[LlmEvent, None]:
        if self._closed:
            raise ProviderError("the OpenAI-compatible LLM session is closed")
        client = self._client
        deadline = asyncio.get_running_loop().time() + self._spec.first_token_timeout_ms / 1000
        body = request_body(self._spec, request)
        calls = _ToolCallParts(client.vendor)
        usage = Usage()
        async with client.stream("chat/completions", body, deadline=deadline) as response:
            chunks = first_within(_chunks(response, client), _has_output, deadline, client.vendor)
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    usage = _usage(chunk) or usage
                    for choice in chunk.get("choices") or ():
                        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                            continue
                        delta = object_or_empty(choice.get("delta"))
                        content = delta.get("content")
                        if isinstance(content, str) and content:
                            yield TextDelta(content)
                        calls.add(delta.get("tool_calls"))
        assembled = calls.finish()
        if assembled:
            yield ToolCallsRequested(assembled)
        yield usage

    async def aclose(self) -> None:
        self._closed = True


def request_body(spec: OpenAiLlm, request: LlmRequest) -> dict[str, Any]:
    """The Chat Completions request for `request` (streamed, usage included)."""
    body: dict[str, Any] = {
        "model": spec.model,
        "messages": [wire_message(message) for message in request.messages],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if request.tools:
        body["tools"] = [_wire_tool(tool) for tool in request.tools]
    if spec.temperature is not None:
        body["temperature"] = spec.temperature
    if spec.max_tokens is not None:
        body["max_tokens"] = spec.max_tokens
    return body


def wire_message(message: ChatMessage) -> dict[str, Any]:
    """One history message in the Chat Completions shape."""
    if message.role == "tool":
        if message.tool_call_id is None:
            raise ProviderError("a tool result without a tool_call_id cannot be sent")
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    if message.role == "assistant" and message.tool_calls:
        return {
            "role": "assistant",
            "content": message.content or None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {
                        "name": call.name,
                        "arguments": json.dumps(call.arguments, ensure_ascii=False),
                    },
                }
                for call in message.tool_calls
            ],
        }
    return {"role": message.role, "content": message.content}


def _wire_tool(tool: ToolDefinition) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        },
    }


async def _chunks(
    response: httpx.Response, client: ProviderClient
) -> AsyncIterator[dict[str, Any]]:
    """The stream's JSON chunks up to `data: [DONE]`; an error chunk or a stream cut short
    raises ProviderError."""
    async for event in sse_events(response.aiter_lines()):
        if event.data == "[DONE]":
            return
        chunk = parse_object(event.data, f"a chunk from {client.vendor}")
        if chunk.get("error"):
            message = redact(error_text(chunk) or "unknown error", client.secrets)
            raise ProviderError(f"{client.vendor} failed mid-reply: {message}")
        yield chunk
    raise ProviderError(f"{client.vendor} ended its stream before [DONE]")


def _has_output(chunk: dict[str, Any]) -> bool:
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict) and (delta.get("content") or delta.get("tool_calls")):
            return True
    return False


def _usage(chunk: dict[str, Any]) -> Usage | None:
    usage = chunk.get("usage")
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return Usage(
        input_tokens=prompt if isinstance(prompt, int) else 0,
        output_tokens=completion if isinstance(completion, int) else 0,
    )


@dataclass
class _CallPart:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class _ToolCallParts:
    """Streamed `tool_calls` deltas assembled by `index`: id and name come first, the
    arguments in fragments; several indexes are parallel calls."""

    def __init__(self, vendor: str) -> None:
        self._vendor = vendor
        self._parts: dict[int, _CallPart] = {}

    def add(self, deltas: object) -> None:
        if not isinstance(deltas, list):
            return
        for position, delta in enumerate(deltas):
            if not isinstance(delta, dict):
                continue
            index = delta.get("index", position)
            part = self._parts.setdefault(
                index if isinstance(index, int) else position, _CallPart()
            )
            function = object_or_empty(delta.get("function"))
            call_id, name = delta.get("id"), function.get("name")
            arguments = function.get("arguments")
            if isinstance(call_id, str) and call_id and not part.id:
                part.id = call_id
            if isinstance(name, str) and name and not part.name:
                part.name = name
            if isinstance(arguments, str):
                part.arguments.append(arguments)

    def finish(self) -> tuple[ToolCall, ...]:
        calls = []
        for index in sorted(self._parts):
            part = self._parts[index]
            if not part.name:
                raise ProviderError(f"{self._vendor} sent a tool call without a name")
            text = "".join(part.arguments).strip() or "{}"
            arguments = parse_object(text, f"the arguments {self._vendor} sent for {part.name!r}")
            # Some local servers send no call ids; the history still needs one to pair results.
            call_id = part.id or f"call_{uuid.uuid4().hex[:24]}"
            calls.append(ToolCall(id=call_id, name=part.name, arguments=arguments))
        return tuple(calls)
