"""A fake OpenAI Chat Completions API (what every OpenAI-compatible server speaks).

Follows OpenAI's documented wire protocol: `Authorization: Bearer <key>` (401 with OpenAI's
error JSON when wrong or missing), `POST /v1/chat/completions` streamed as
`data: {chunk}\\n\\n` lines ending with a usage chunk and `data: [DONE]\\n\\n`, tool calls
streamed by `index` (id and name first, arguments in fragments), `GET /v1/models`. Replies
are scripted per request (`script`); every request is recorded, with the client's port (to
see connection reuse) and how its stream ended.

    async with FakeOpenAiApi(api_key="sk-test") as api:
        api.script(Reply(text=["Hello", " there."]))
        ... OpenAiLlm(model=api.model, base_url=api.base_url) ...
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

# Only guards against a hung test; no assertion depends on it.
HOLD_LIMIT_S = 10.0
SSE_MEDIA_TYPE = "text/event-stream; charset=utf-8"


@dataclass
class ToolCallReply:
    name: str
    arguments: str
    """The arguments' JSON text, streamed in `fragment`-character pieces."""
    id: str = field(default_factory=lambda: "call_" + secrets.token_hex(12))
    fragment: int = 7


@dataclass
class Reply:
    """One scripted answer. `hold_after` sends that many content chunks (after the role
    chunk; 0 holds the first token), then waits for `release()`. `fail_after` sends that
    many, then ends the stream with `failure`: an in-stream error chunk, a dropped
    connection, or a clean end without `[DONE]`. `status` answers with that error status and
    `error_message` instead."""

    text: list[str] = field(default_factory=list)
    tool_calls: list[ToolCallReply] = field(default_factory=list)
    hold_after: int | None = None
    fail_after: int | None = None
    failure: Literal["error_chunk", "disconnect", "truncate"] = "disconnect"
    status: int | None = None
    error_message: str = "The server had an error while processing your request."
    usage: tuple[int, int] = (12, 5)


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    client_port: int | None
    outcome: str = "pending"
    """For streams: 'complete', 'disconnected' (the client went away) or 'failed'."""


class _Abort(Exception):
    """Raised inside a stream to make the server drop the connection mid-body."""


class FakeOpenAiApi:
    """State and routes of the fake; `base_url` (ending in /v1) is set while it runs."""

    def __init__(
        self, api_key: str | None = "sk-test-" + "k" * 24, model: str = "gpt-fake"
    ) -> None:
        self.api_key = api_key
        self.model = model
        self.base_url = ""
        self.requests: list[RecordedRequest] = []
        self.disconnected = asyncio.Event()
        self._replies: list[Reply] = []
        self._released = asyncio.Event()
        self._arrivals = asyncio.Condition()
        self._stack = AsyncExitStack()
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._completions, methods=["POST"]),
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

    def completions(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    async def __aenter__(self) -> FakeOpenAiApi:
        self.base_url = await self._stack.enter_async_context(serve(self.app)) + "/v1"
        self._stack.callback(self.release)  # held streams end, so the server can stop
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
            denied = _check_bearer(request.headers.get("authorization"), self.api_key)
            if denied is not None:
                return recorded, denied
        if raw and recorded.body is None:
            return recorded, _error(400, "We could not parse the JSON body of your request.")
        return recorded, None

    async def _models(self, request: Request) -> Response:
        _, denied = await self._record(request)
        if denied is not None:
            return denied
        model = {"id": self.model, "object": "model", "created": 1700000000, "owned_by": "fake"}
        return JSONResponse({"object": "list", "data": [model]})

    async def _completions(self, request: Request) -> Response:
        recorded, denied = await self._record(request)
        if denied is not None:
            return denied
        body = recorded.body or {}
        invalid = _invalid_request(body)
        if invalid is not None:
            return _error(400, invalid, param="messages")
        if body.get("stream") is not True:
            return _error(400, "this fake only streams: set stream to true", param="stream")
        reply = self._replies.pop(0) if self._replies else Reply(text=["Hello", "!"])
        if reply.status is not None:
            return _error(reply.status, reply.error_message, kind=_error_type(reply.status))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(
            self._stream(recorded, reply, include_usage), media_type=SSE_MEDIA_TYPE
        )

    async def _stream(
        self, recorded: RecordedRequest, reply: Reply, include_usage: bool
    ) -> AsyncIterator[bytes]:
        chunk_id = "chatcmpl-" + secrets.token_hex(12)

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            payload = {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": 1700000000,
                "model": self.model,
                "system_fingerprint": "fp_fake",
                "choices": choices,
                **extra,
            }
            return f"data: {json.dumps(payload)}\n\n".encode()

        def delta(content: dict[str, Any], finish: str | None = None) -> bytes:
            return chunk(
                [{"index": 0, "delta": content, "logprobs": None, "finish_reason": finish}]
            )

        try:
            yield delta({"role": "assistant", "content": ""})
            for sent, piece in enumerate(_content_deltas(reply)):
                if sent == reply.hold_after:
                    async with asyncio.timeout(HOLD_LIMIT_S):
                        await self._released.wait()
                if reply.fail_after is not None and sent >= reply.fail_after:
                    if reply.failure == "error_chunk":
                        error = {"message": reply.error_message, "type": "server_error"}
                        yield f"data: {json.dumps({'error': error})}\n\n".encode()
                    elif reply.failure == "disconnect":
                        raise _Abort("connection dropped on purpose")
                    recorded.outcome = "failed"
                    return
                yield delta(piece)
            yield delta({}, "tool_calls" if reply.tool_calls else "stop")
            if include_usage:
                prompt, completion = reply.usage
                usage = {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                }
                yield chunk([], usage=usage)
            yield b"data: [DONE]\n\n"
            recorded.outcome = "complete"
        except _Abort:
            recorded.outcome = "failed"
            raise
        except asyncio.CancelledError:
            recorded.outcome = "disconnected"
            self.disconnected.set()
            raise


def _content_deltas(reply: Reply) -> list[dict[str, Any]]:
    """The reply's deltas as OpenAI streams them: text pieces, then each tool call (id, type
    and name with empty arguments first, then the arguments in fragments)."""
    deltas: list[dict[str, Any]] = [{"content": piece} for piece in reply.text]
    for index, call in enumerate(reply.tool_calls):
        head = {
            "index": index,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        deltas.append({"tool_calls": [head]})
        text = call.arguments
        for start in range(0, len(text), call.fragment):
            fragment = text[start : start + call.fragment]
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
    return deltas


def _invalid_request(body: dict[str, Any]) -> str | None:
    """What OpenAI would refuse in this request, or None."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array"
    open_calls: set[str] = set()
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("system", "user", "assistant", "tool", "developer"):
            return f"Invalid value for 'messages[{index}].role': {role!r}"
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in open_calls:
                return (
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'."
                )
            open_calls.discard(call_id)
            continue
        if open_calls:
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'."
            )
        for call in message.get("tool_calls") or []:
            try:
                json.loads(call["function"]["arguments"])
            except (KeyError, TypeError, ValueError):
                return f"Invalid tool call in 'messages[{index}]'"
            open_calls.add(call["id"])
    return None


def _check_bearer(header: str | None, api_key: str) -> Response | None:
    if not header:
        return _error(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            kind="invalid_request_error",
        )
    presented = header.removeprefix("Bearer ")
    if secrets.compare_digest(presented, api_key):
        return None
    # OpenAI shows only the ends of a wrong key.
    masked = presented[:3] + "*" * max(0, len(presented) - 7) + presented[-4:]
    return _error(
        401,
        f"Incorrect API key provided: {masked}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        kind="invalid_request_error",
        code="invalid_api_key",
    )


def _error_type(status: int) -> str:
    return {429: "requests", 400: "invalid_request_error"}.get(status, "server_error")


def _error(
    status: int,
    message: str,
    *,
    kind: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


@asynccontextmanager
async def serve(app: Starlette) -> AsyncIterator[str]:
    """Run `app` on 127.0.0.1:<random port> for the block, which gets its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_config=None, lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(5):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()
