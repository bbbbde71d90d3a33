"""Calling a webhook tool: one signed HTTP request, its answer turned into content for the LLM.

Arguments travel as the JSON body (POST, PUT, PATCH) or as query parameters (GET, DELETE).
Every failure (HTTP error status, timeout, unreachable host, invalid JSON) becomes a short
error for the LLM: the conversation goes on. Answers are read up to a cap and truncated, so a
misbehaving endpoint can neither flood the LLM's context nor the process's memory. The
request goes to an address the egress policy checked, and redirects are not followed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

import httpx

from voxline.agent_spec import WebhookTool
from voxline.security import egress
from voxline.security.egress import EgressPolicy, EgressRefused
from voxline.tools.outcome import error_content, json_content
from voxline.tools.signing import SESSION_HEADER, SIGNATURE_HEADER, sign

logger = logging.getLogger(__name__)

MAX_CONTENT_CHARS = 4096
_MAX_READ_BYTES = 64 * 1024
_MAX_DETAIL_CHARS = 200
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


async def call_webhook(
    spec: WebhookTool,
    arguments: Mapping[str, Any],
    *,
    http: httpx.AsyncClient,
    secret: bytes,
    session_id: str,
    policy: EgressPolicy | None = None,
) -> tuple[bool, str]:
    """Send the signed request; return (ok, content for the LLM). Never raises for failures
    of the endpoint or the network. `policy`: the process's egress policy by default."""
    has_body = spec.method in _BODY_METHODS
    body = json_content(dict(arguments)) if has_body else ""
    headers = {
        SIGNATURE_HEADER: sign(secret, body),
        SESSION_HEADER: session_id,
        "Content-Type": "application/json",
        "Accept": "application/json, text/plain;q=0.9, */*;q=0.1",
    }
    timeout_s = spec.timeout_ms / 1000
    try:
        # httpx timeouts are per phase; the agent's timeout bounds the whole exchange.
        async with asyncio.timeout(timeout_s):
            target = await (policy or egress.current()).pin(str(spec.url))
            async with http.stream(
                spec.method,
                target.url,
                params=None if has_body else _query_params(arguments),
                content=body.encode() if has_body else None,
                headers={**headers, **target.headers},
                extensions=target.extensions,
                timeout=timeout_s,
                follow_redirects=False,
            ) as response:
                raw, truncated = await _read_capped(response)
    except EgressRefused as exc:
        logger.warning("webhook tool %s refused: %s", spec.name, exc)
        return False, error_content("the tool's URL is not allowed by the server's egress policy")
    except (TimeoutError, httpx.TimeoutException):
        logger.warning("webhook tool %s timed out after %.1f s", spec.name, timeout_s)
        return False, error_content(f"the tool did not answer within {timeout_s:g} seconds")
    except (httpx.HTTPError, OSError) as exc:  # OSError: the name does not resolve
        logger.warning("webhook tool %s could not be reached: %s", spec.name, type(exc).__name__)
        return False, error_content("the tool could not be reached")
    text = raw.decode(response.encoding or "utf-8", errors="replace")
    if not response.is_success:
        logger.warning("webhook tool %s answered HTTP %d", spec.name, response.status_code)
        failure: dict[str, Any] = {"error": f"the tool failed (HTTP {response.status_code})"}
        if text.strip():
            failure["detail"] = text.strip()[:_MAX_DETAIL_CHARS]
        return False, json_content(failure)
    return _answer(spec.name, response.headers.get("content-type", ""), text, truncated)


def _answer(name: str, content_type: str, text: str, truncated: bool) -> tuple[bool, str]:
    if not text.strip():
        return True, json_content({"status": "ok"})
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/json" or media_type.endswith("+json"):
        try:
            value = json.loads(text)
        except ValueError:
            logger.warning("webhook tool %s answered invalid JSON", name)
            reason = "too large" if truncated else "invalid JSON"
            return False, error_content(f"the tool's answer was {reason}")
        content = json_content(value)
        if len(content) <= MAX_CONTENT_CHARS:
            return True, content
        return True, json_content({"truncated": True, "text": content[:MAX_CONTENT_CHARS]})
    result: dict[str, Any] = {"text": text[:MAX_CONTENT_CHARS]}
    if truncated or len(text) > MAX_CONTENT_CHARS:
        result["truncated"] = True
    return True, json_content(result)


async def _read_capped(response: httpx.Response) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > _MAX_READ_BYTES:
            return b"".join(chunks)[:_MAX_READ_BYTES], True
    return b"".join(chunks), False


def _query_params(arguments: Mapping[str, Any]) -> httpx.QueryParams:
    # A list becomes a repeated parameter (?tag=a&tag=b); nested values travel as JSON text.
    return httpx.QueryParams(
        [
            (key, _param_text(item))
            for key, value in arguments.items()
            for item in (value if isinstance(value, list) else [value])
        ]
    )


def _param_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json_content(value)
