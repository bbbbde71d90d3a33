"""A fake Anthropic Messages API.

Follows Anthropic's documented wire protocol: `x-api-key` (401 `authentication_error` when
wrong or missing) and `anthropic-version` headers, `POST /v1/messages` streamed as
`event: <type>\\ndata: {json}\\n\\n` events (message_start, content_block_start, ping,
content_block_delta with text_delta or input_json_delta, content_block_stop, message_delta
with the stop reason and usage, message_stop; `error` for a failure mid-stream) and
`GET /v1/models`. It refuses what the real API refuses and a client could get wrong: a
`system` role in messages, consecutive messages of one role, empty text blocks, tool_use
blocks not answered by tool_result blocks in the next message. Replies are scripted per
request (`script`) with `tests.fakes.openai_api.Reply`; every request is recorded.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.openai_api import (
    HOLD_LIMIT_S,
    SSE_MEDIA_TYPE,
    RecordedRequest,
    Reply,
    serve,
)

API_VERSION = "2023-06-01"
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


class _Abort(Exception):
    """Raised inside a stream to make the server drop the connection mid-body."""


class FakeAnthropicApi:
    """State and routes of the fake; `base_url` is set while it runs."""

    def __init__(self, api_key: str | None = "sk-ant-test-" + "k" * 24) -> None:
        self.api_key = api_key
        self.model = "claude-fake"
        self.base_url = ""
        self.requests: list[RecordedRequest] = []
        self.disconnected = asyncio.Event()
        self._replies: list[Reply] = []
        self._released = asyncio.Event()
        self._arrivals = asyncio.Condition()
        self._stack = AsyncExitStack()
        self.app = Starlette(
            routes=[
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with `replies`, in order (then a default greeting)."""
        self._replies.extend(replies)

    async def wait_for_request(self, path: str) -> RecordedRequest:
        """The first request to `path`, once it has arrived."""
        async with asyncio.timeout(HOLD_LIMIT_S), self._arrivals:
            await self._arrivals.wait_for(lambda: any(r.path == path for r in self.requests))
        return next(r for r in self.requests if r.path == path)

    def release(self) -> None:
        """Let every held first token go."""
        self._released.set()

    def messages(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/v1/messages"]

    async def __aenter__(self) -> FakeAnthropicApi:
        self.base_url = await self._stack.enter_async_context(serve(self.app))
        self._stack.callback(self.release)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()

    async def _record(self, request: Request) -> tuple[RecordedRequest, Response | None]:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        recorded = RecordedRequest(
            method=request.method,
            path=request.url.path,
            headers={key.lower(): value for key, value in request.headers.items()},
            body=body if isinstance(body, dict) else None,
            client_port=request.client.port if request.client else None,
        )
        self.requests.append(recorded)
        async with self._arrivals:
            self._arrivals.notify_all()
        if self.api_key is not None:
            presented = request.headers.get("x-api-key", "")
            if not secrets.compare_digest(presented, self.api_key):
                return recorded, _error(401, "invalid x-api-key")
        if request.headers.get("anthropic-version") != API_VERSION:
            return recorded, _error(400, "anthropic-version: header is required")
        if raw and recorded.body is None:
            return recorded, _error(400, "There was an error parsing the body of your request")
        return recorded, None

    async def _models(self, request: Request) -> Response:
        _, denied = await self._record(request)
        if denied is not None:
            return denied
        model = {"type": "model", "id": self.model, "display_name": "Claude (fake)"}
        return JSONResponse({"data": [model], "has_more": False})

    async def _messages(self, request: Request) -> Response:
        recorded, denied = await self._record(request)
        if denied is not None:
            return denied
        invalid = _invalid_request(recorded.body or {})
        if invalid is not None:
            return _error(400, invalid)
        reply = self._replies.pop(0) if self._replies else Reply(text=["Hello", "!"])
        if reply.status is not None:
            return _error(reply.status, reply.error_message)
        return StreamingResponse(self._stream(recorded, reply), media_type=SSE_MEDIA_TYPE)

    async def _stream(self, recorded: RecordedRequest, reply: Reply) -> AsyncIterator[bytes]:
        prompt, completion = reply.usage
        try:
            message: dict[str, Any] = {
                "id": "msg_" + secrets.token_hex(12),
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": self.model,
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": prompt,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 3,
                    "output_tokens": 1,
                },
            }
            yield _event("message_start", {"message": message})
            for sent, item in enumerate(_content_events(reply)):
                if sent == reply.hold_after:
                    async with asyncio.timeout(HOLD_LIMIT_S):
                        await self._released.wait()
                if reply.fail_after is not None and sent >= reply.fail_after:
                    if reply.failure == "error_chunk":
                        error = {"type": "overloaded_error", "message": reply.error_message}
                        yield _event("error", {"error": error})
                    elif reply.failure == "disconnect":
                        raise _Abort("connection dropped on purpose")
                    recorded.outcome = "failed"
                    return
                yield item
            stop_reason = "tool_use" if reply.tool_calls else "end_turn"
            yield _event(
                "message_delta",
                {
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": {"output_tokens": completion},
                },
            )
            yield _event("message_stop", {})
            recorded.outcome = "complete"
        except _Abort:
            recorded.outcome = "failed"
            raise
        except asyncio.CancelledError:
            recorded.outcome = "disconnected"
            self.disconnected.set()
            raise


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()


def _content_events(reply: Reply) -> list[bytes]:
    """A text block (one delta per piece, a ping after the first), then one tool_use block
    per call whose input arrives as JSON fragments."""
    events: list[bytes] = []
    index = 0
    if reply.text:
        start = {"index": 0, "content_block": {"type": "text", "text": ""}}
        events.append(_event("content_block_start", start))
        for position, piece in enumerate(reply.text):
            delta = {"index": 0, "delta": {"type": "text_delta", "text": piece}}
            events.append(_event("content_block_delta", delta))
            if position == 0:
                events.append(_event("ping", {}))
        events.append(_event("content_block_stop", {"index": 0}))
        index = 1
    for offset, call in enumerate(reply.tool_calls):
        block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
        events.append(
            _event("content_block_start", {"index": index + offset, "content_block": block})
        )
        text = call.arguments
        for start_at in range(0, len(text), call.fragment):
            fragment = text[start_at : start_at + call.fragment]
            delta = {"type": "input_json_delta", "partial_json": fragment}
            events.append(_event("content_block_delta", {"index": index + offset, "delta": delta}))
        events.append(_event("content_block_stop", {"index": index + offset}))
    return events


def _invalid_request(body: dict[str, Any]) -> str | None:
    """What the Messages API would refuse in this request, or None."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: Field required"
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    system = body.get("system")
    if system is not None and not isinstance(system, (str, list)):
        return "system: Input should be a valid list"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    pending_tool_uses: set[str] = set()
    previous_role = None
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            return f"messages.{index}.role: Input should be 'user' or 'assistant'"
        if role == previous_role:
            return "messages: roles must alternate between 'user' and 'assistant'"
        previous_role = role
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(blocks, list) or not blocks:
            return f"messages.{index}: all messages must have non-empty content"
        results = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
        if pending_tool_uses - results:
            return (
                "messages.{}: `tool_use` ids were found without `tool_result` blocks "
                "immediately after: {}".format(
                    index, ", ".join(sorted(pending_tool_uses - results))
                )
            )
        if results - pending_tool_uses:
            return f"messages.{index}: unexpected `tool_use_id` found in `tool_result` blocks"
        pending_tool_uses = set()
        for block in blocks:
            if block.get("type") == "text" and not str(block.get("text", "")).strip():
                return f"messages.{index}: text content blocks must contain non-whitespace text"
            if block.get("type") == "tool_use":
                if role != "assistant" or not isinstance(block.get("input"), dict):
                    return f"messages.{index}: invalid tool_use block"
                pending_tool_uses.add(block["id"])
    if pending_tool_uses:
        return "`tool_use` ids were found without `tool_result` blocks immediately after"
    last = messages[-1]
    if last["role"] == "assistant":
        text = last["content"] if isinstance(last["content"], str) else ""
        if text != text.rstrip():
            return "final assistant content cannot end with trailing whitespace"
    return None


def _error(status: int, message: str) -> JSONResponse:
    kind = _ERROR_TYPES.get(status, "api_error")
    body = {
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": "req_" + secrets.token_hex(12),
    }
    return JSONResponse(body, status_code=status)
