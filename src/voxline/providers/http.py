"""HTTP plumbing shared by the cloud providers.

`ProviderClient` is a provider object's pooled keep-alive client with connection warm-ups;
`post_stream` makes a streamed POST whose every failure becomes a `ProviderError` carrying
the vendor's own message and never a secret; `sse_events` parses Server-Sent Events and
`first_within` puts a deadline on the first useful item of a stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from voxline.providers.base import ProviderError
from voxline.security import egress
from voxline.security.egress import EgressPolicy, EgressRefused, GuardedTransport

logger = logging.getLogger(__name__)

T = TypeVar("T")

STALL_S = 15.0
"""The longest silence tolerated inside a stream once it has started."""
_CONNECT_S = 10.0
_ERROR_BODY_LIMIT = 16_384
_MESSAGE_LIMIT = 300
_REDACTED = "[redacted]"
# A connection used this recently still waits in the pool: warming another is wasted.
_WARM_FOR_S = 30.0


def new_client(
    base_url: str,
    headers: Mapping[str, str],
    *,
    first_token_s: float,
    policy: EgressPolicy | None = None,
) -> httpx.AsyncClient:
    """A keep-alive HTTP/1.1 client for one provider object, shared by all its calls; every
    connection obeys `policy` (the process's egress policy by default)."""
    # No connection cap: a call waiting for a free connection is a call not speaking.
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=64, keepalive_expiry=60.0)
    return httpx.AsyncClient(
        base_url=base_url,
        headers=dict(headers),
        timeout=httpx.Timeout(
            connect=_CONNECT_S, read=max(STALL_S, first_token_s), write=_CONNECT_S, pool=None
        ),
        transport=GuardedTransport(policy or egress.current(), limits=limits),
        follow_redirects=False,
    )


async def warm_connection(client: httpx.AsyncClient, path: str) -> None:
    """GET `path` so that a pooled connection (TCP and TLS done) waits for the next request.

    Any answer, even an error status, leaves the connection warm; failures are only logged.
    """
    try:
        await client.get(path)
    except EgressRefused as exc:
        logger.warning("not warming a connection: %s", exc)
    except httpx.HTTPError as exc:
        logger.debug("warming a connection to %s failed: %s", client.base_url, type(exc).__name__)


@asynccontextmanager
async def post_stream(
    client: httpx.AsyncClient,
    path: str,
    body: Mapping[str, Any],
    *,
    vendor: str,
    deadline: float,
    secrets: Iterable[str] = (),
) -> AsyncIterator[httpx.Response]:
    """POST `body` as JSON and hold the streamed 2xx response open for the block.

    The answer's headers must arrive by `deadline` (event-loop time). An error status, a
    network failure or timeout, here or while the block reads the body, raises ProviderError
    naming `vendor` with the vendor's message, with every value of `secrets` redacted.
    """
    hidden = tuple(secret for secret in secrets if secret)
    try:
        request = client.build_request("POST", path, json=body)
    except (TypeError, ValueError) as exc:  # e.g. a NaN among tool arguments
        raise ProviderError(f"the request to {vendor} cannot be encoded as JSON: {exc}") from exc
    try:
        async with asyncio.timeout_at(deadline):
            response = await client.send(request, stream=True)
        try:
            if not response.is_success:
                message = await _error_message(response, hidden)
                raise ProviderError(f"{vendor} answered HTTP {response.status_code}: {message}")
            yield response
        finally:
            await response.aclose()
    except EgressRefused as exc:
        raise ProviderError(f"{vendor} request refused: {exc}") from exc
    except TimeoutError as exc:
        raise ProviderError(f"{vendor} timed out before answering") from exc
    except httpx.TimeoutException as exc:
        raise ProviderError(f"{vendor} timed out ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:
        detail = redact(_one_line(str(exc)) or type(exc).__name__, hidden)
        raise ProviderError(f"{vendor} request failed: {detail}") from exc


class ProviderClient:
    """A provider object's HTTP side, shared by all its calls: the pooled client, its
    secrets (redacted from every error) and connection warm-ups. Its connections obey
    `policy` (the process's egress policy by default): a refused one is a ProviderError.

    `prewarm()` (from `open()`, per call) starts a background warm-up unless a pooled
    connection is likely idle already: a request ended within `_WARM_FOR_S` and none runs.
    """

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        *,
        vendor: str,
        warm_path: str,
        first_token_s: float,
        secrets: Iterable[str] = (),
        policy: EgressPolicy | None = None,
    ) -> None:
        self.vendor = vendor
        self.secrets = tuple(secret for secret in secrets if secret)
        self.http = new_client(base_url, headers, first_token_s=first_token_s, policy=policy)
        self._warm_path = warm_path
        self._in_flight = 0
        self._last_done = float("-inf")
        self._warming: asyncio.Task[None] | None = None

    async def warm_up(self) -> None:
        """Open a pooled connection now."""
        await warm_connection(self.http, self._warm_path)
        self._last_done = asyncio.get_running_loop().time()

    def prewarm(self) -> None:
        """Start warming a connection in the background, unless one is likely idle."""
        now = asyncio.get_running_loop().time()
        if self._in_flight == 0 and now - self._last_done < _WARM_FOR_S:
            return
        if self._warming is None or self._warming.done():
            self._warming = asyncio.create_task(self.warm_up())

    @asynccontextmanager
    async def stream(
        self, path: str, body: Mapping[str, Any], *, deadline: float
    ) -> AsyncIterator[httpx.Response]:
        """`post_stream` on this client (see there), counted as in flight meanwhile."""
        self._in_flight += 1
        try:
            async with post_stream(
                self.http, path, body, vendor=self.vendor, deadline=deadline, secrets=self.secrets
            ) as response:
                yield response
        finally:
            self._in_flight -= 1
            self._last_done = asyncio.get_running_loop().time()

    async def aclose(self) -> None:
        """Close the pooled connections (at shutdown: nothing may use the client after)."""
        if self._warming is not None:
            self._warming.cancel()
        await self.http.aclose()


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One Server-Sent Event: its type ('message' unless named) and its data lines joined."""

    event: str
    data: str


async def sse_events(lines: AsyncIterator[str]) -> AsyncGenerator[SseEvent, None]:
    """Parse text/event-stream lines (without terminators) into events, per the WHATWG spec:
    comments and unknown fields are skipped, an unterminated last event is dropped."""
    event = ""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield SseEvent(event or "message", "\n".join(data))
            event, data = "", []
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value


async def first_within(
    items: AsyncIterator[T], started: Callable[[T], bool], deadline: float, what: str
) -> AsyncGenerator[T, None]:
    """Yield `items`, failing with ProviderError("... timed out ...") when no item for which
    `started` holds has arrived by `deadline` (event-loop time); later items are not timed.
    `items` is closed when this iteration ends, however it ends."""
    waiting = True
    try:
        while True:
            try:
                # Only the wait is timed: a deadline must never span a yield to the consumer.
                async with asyncio.timeout_at(deadline if waiting else None):
                    item = await anext(items)
            except StopAsyncIteration:
                return
            except TimeoutError as exc:
                raise ProviderError(f"{what} timed out waiting for the first token") from exc
            if waiting and started(item):
                waiting = False
            yield item
    finally:
        close = getattr(items, "aclose", None)
        if close is not None:
            await close()


def parse_object(data: str, what: str) -> dict[str, Any]:
    """`data` as a JSON object; anything else raises ProviderError("<what> is not ...")."""
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise ProviderError(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ProviderError(f"{what} is a JSON {type(value).__name__}, not an object")
    return value


def object_or_empty(value: object) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one (for optional nested fields)."""
    return value if isinstance(value, dict) else {}


def error_text(payload: Any) -> str | None:
    """The message of a vendor error body: OpenAI's and Anthropic's `{"error": {"message"}}`,
    a bare `{"error": "..."}` (Ollama, llama.cpp), or `{"message"}` / `{"detail"}`."""
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")
    candidates = [error.get("message") if isinstance(error, dict) else error]
    candidates += [payload.get("message"), payload.get("detail")]
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip():
            return _one_line(candidate)
    return None


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every non-empty value of `secrets` replaced by a marker."""
    for secret in secrets:
        if not secret:
            continue
        text = text.replace(secret, _REDACTED)
    return text


async def _error_message(response: httpx.Response, secrets: tuple[str, ...]) -> str:
    body = b""
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) >= _ERROR_BODY_LIMIT:
            break
    try:
        message = error_text(json.loads(body))
    except ValueError:
        message = None
    if message is None:
        message = _one_line(body.decode("utf-8", "replace")) or response.reason_phrase
    message = redact(message, secrets)
    return message if len(message) <= _MESSAGE_LIMIT else message[:_MESSAGE_LIMIT] + "..."


def _one_line(text: str) -> str:
    return " ".join(text.split())


class HostedModel:
    """The lifecycle shared by models behind an HTTP API: one pooled `client` per provider
    object, shared by all calls."""

    client: ProviderClient

    async def warm_up(self) -> None:
        """Open a pooled connection to the API now (a GET of its model list)."""
        await self.client.warm_up()

    async def aclose(self) -> None:
        """Close the pooled connections (at shutdown; no call may use the model after)."""
        await self.client.aclose()
