"""Plumbing shared by the vendors' WebSocket speech APIs (Deepgram, Cartesia, ElevenLabs).

`connect` opens a socket with the key in a header (never in the URL, so it cannot reach a
log) and turns every way of failing into a ProviderError that says what to fix: a rejected
key, a refused upgrade, an unreachable host, a timeout. `PcmDecoder` turns the vendors'
little-endian PCM16 bytes into samples, keeping an odd byte for the next chunk.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from collections.abc import Coroutine, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import numpy as np
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from voxline.audio.pcm import Pcm16
from voxline.providers.base import ProviderError
from voxline.security.egress import EgressRefused, websocket_target

logger = logging.getLogger(__name__)

_AUTH_STATUSES = frozenset({401, 403})
_SECRET_HEADERS = frozenset({"authorization", "x-api-key", "xi-api-key"})


class _RedactSecretHeaders(logging.Filter):
    """websockets logs every handshake header at DEBUG: keep the keys out of the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if (
            record.msg == "> %s: %s"
            and isinstance(args, tuple)
            and len(args) == 2
            and str(args[0]).lower() in _SECRET_HEADERS
        ):
            record.args = (args[0], "[redacted]")
        return True


_wire_logger = logging.getLogger("voxline.providers.ws.wire")
_wire_logger.addFilter(_RedactSecretHeaders())
_BODY_EXCERPT = 200


def ws_url(base_url: str, path: str, params: Mapping[str, str | int | float | bool]) -> str:
    """`base_url` + `path` + the query, with booleans spelled `true`/`false`."""
    query = urlencode(
        {
            key: str(value).lower() if isinstance(value, bool) else value
            for key, value in params.items()
        }
    )
    return f"{base_url.rstrip('/')}{path}?{query}" if query else f"{base_url.rstrip('/')}{path}"


async def connect(
    url: str, headers: Mapping[str, str], *, vendor: str, credential: str | None, timeout_s: float
) -> ClientConnection:
    """An open WebSocket to `url`; any failure is a ProviderError naming `vendor`.

    A 401/403 on the upgrade says the key was rejected and names the `credential` to check.
    The socket goes to an address the process's egress policy checked; a redirect to another
    host is refused.
    """
    host = urlsplit(url).netloc or url
    try:
        async with asyncio.timeout(timeout_s):
            target = await websocket_target(url)
        return await ws_connect(
            url,
            **target,
            additional_headers=dict(headers),
            open_timeout=timeout_s,
            # Audio and base64 JSON barely compress: deflate would only cost CPU.
            compression=None,
            max_size=4 * 1024 * 1024,
            close_timeout=2.0,
            logger=_wire_logger,
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        if status in _AUTH_STATUSES:
            where = f"the {credential!r} credential" if credential else "its API key"
            raise ProviderError(
                f"{vendor} rejected the API key (HTTP {status}): check {where}"
            ) from exc
        body = exc.response.body.decode("utf-8", "replace")[:_BODY_EXCERPT].strip()
        detail = f": {body}" if body else ""
        raise ProviderError(f"{vendor} refused the connection (HTTP {status}){detail}") from exc
    except EgressRefused as exc:
        raise ProviderError(f"not connecting to {vendor}: {exc}") from exc
    except TimeoutError as exc:
        raise ProviderError(
            f"could not connect to {vendor} at {host} within {timeout_s:g} s"
        ) from exc
    except (OSError, InvalidHandshake, InvalidURI) as exc:
        raise ProviderError(f"could not connect to {vendor} at {host}: {exc}") from exc


def closed_reason(connection: ClientConnection) -> str:
    """How a closed connection ended, to follow "the <vendor> connection ..." in a message."""
    code = connection.close_code
    if code is None or code == 1006:
        return "dropped without a close frame"
    reason = f" ({connection.close_reason})" if connection.close_reason else ""
    return f"closed with code {code}{reason}"


def parse_json(frame: str | bytes, vendor: str) -> dict[str, Any]:
    """A vendor's JSON text message as a dict; anything else is a ProviderError."""
    try:
        message = json.loads(frame)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProviderError(f"{vendor} sent a message that is not JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise ProviderError(f"{vendor} sent a JSON message that is not an object")
    return message


def dump_json(message: Mapping[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


def decode_base64(data: object, vendor: str) -> bytes:
    """The bytes of a base64 field; a missing or malformed one is a ProviderError."""
    if not isinstance(data, str):
        raise ProviderError(f"{vendor} sent an audio message without base64 data")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProviderError(f"{vendor} sent malformed base64 audio: {exc}") from exc


class PcmDecoder:
    """Little-endian PCM16 bytes in, int16 samples out; a trailing odd byte waits for the
    next chunk, since vendors may split a stream anywhere."""

    def __init__(self) -> None:
        self._pending = b""

    def decode(self, data: bytes) -> Pcm16:
        data = self._pending + data
        usable = len(data) - len(data) % 2
        self._pending = data[usable:]
        return np.frombuffer(data[:usable], dtype="<i2").astype(np.int16)


async def close_quietly(connection: ClientConnection) -> None:
    """Close a connection (at most the close timeout given at connect), ignoring failures."""
    try:
        await connection.close()
    except (OSError, ConnectionClosed) as exc:
        logger.debug("closing a vendor connection failed: %s", exc)


class Background:
    """Fire-and-forget work (a cancel message, a close) that must neither delay the caller
    nor be garbage-collected mid-flight; `aclose` waits for what is still running."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks))

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.debug("background vendor work failed: %s", task.exception())
