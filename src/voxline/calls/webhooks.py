"""Signed session webhooks (`session.ended`, `session.analyzed`) sent to an agent's
`webhook_url`, with retries.

Delivery runs in the background so that finishing a call never waits on the receiver. Each
attempt is signed afresh (`Voxline-Signature`, see `voxline.tools.signing`); 5xx answers,
timeouts and connection errors are retried with exponential backoff. Each attempt goes to an
address the egress policy checked; a refused URL is not retried, and redirects not followed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import httpx

from voxline.observability.metrics import WEBHOOK_DELIVERIES
from voxline.security import egress
from voxline.security.egress import EgressPolicy, EgressRefused
from voxline.tools.signing import SESSION_HEADER, SIGNATURE_HEADER, sign

logger = logging.getLogger(__name__)

_ATTEMPTS = 5
_FIRST_BACKOFF_S = 1.0


class SessionWebhooks:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        attempts: int = _ATTEMPTS,
        first_backoff_s: float = _FIRST_BACKOFF_S,
        policy: EgressPolicy | None = None,
    ) -> None:
        self._http = http
        self._policy = policy
        self._attempts = attempts
        self._first_backoff_s = first_backoff_s
        self._pending: set[asyncio.Task[None]] = set()

    def session_ended(
        self, url: str, secret: bytes, session_id: str, status: str, end_reason: str
    ) -> None:
        """Queue a `session.ended` delivery; returns at once."""
        data = {"sessionId": session_id, "status": status, "endReason": end_reason}
        self._queue(url, secret, session_id, "session.ended", data)

    def session_analyzed(
        self, url: str, secret: bytes, session_id: str, analysis: dict[str, Any]
    ) -> None:
        """Queue a `session.analyzed` delivery (`analysis` as the sessions API shows it)."""
        data = {"sessionId": session_id, "analysis": analysis}
        self._queue(url, secret, session_id, "session.analyzed", data)

    def _queue(
        self, url: str, secret: bytes, session_id: str, kind: str, data: dict[str, Any]
    ) -> None:
        body = json.dumps(
            {"type": kind, "createdAt": int(time.time()), "data": data}, separators=(",", ":")
        )
        task = asyncio.create_task(self._deliver(url, secret, session_id, body))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _deliver(self, url: str, secret: bytes, session_id: str, body: str) -> None:
        delay = self._first_backoff_s
        for attempt in range(1, self._attempts + 1):
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(secret, body),
                SESSION_HEADER: session_id,
            }
            try:
                target = await (self._policy or egress.current()).pin(url)
                response = await self._http.post(
                    target.url,
                    content=body,
                    headers={**headers, **target.headers},
                    extensions=target.extensions,
                    follow_redirects=False,
                )
                if response.status_code < 500:
                    refused = response.status_code >= 400
                    WEBHOOK_DELIVERIES.labels("refused" if refused else "delivered").inc()
                    if refused:
                        logger.warning(
                            "session webhook for %s refused with %d; not retried",
                            session_id,
                            response.status_code,
                        )
                    return
                reason = f"status {response.status_code}"
            except EgressRefused as exc:
                logger.warning("session webhook for %s not sent: %s", session_id, exc)
                return
            except (httpx.HTTPError, OSError) as exc:
                reason = type(exc).__name__
            logger.info(
                "session webhook for %s failed (%s), attempt %d of %d",
                session_id,
                reason,
                attempt,
                self._attempts,
            )
            if attempt < self._attempts:
                await asyncio.sleep(delay)
                delay *= 2
        WEBHOOK_DELIVERIES.labels("failed").inc()
        logger.warning("session webhook for %s given up after %d attempts", session_id, attempt)

    async def aclose(self) -> None:
        """Give in-flight deliveries a moment, then drop them (shutdown)."""
        if self._pending:
            _, still = await asyncio.wait(list(self._pending), timeout=2.0)
            for task in still:
                task.cancel()
