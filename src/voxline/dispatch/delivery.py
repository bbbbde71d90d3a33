"""Delivers the webhook outbox: due rows claimed (any process may), POSTed signed like
session webhooks (`Voxline-Signature` over timestamp + body), results recorded. The URLs are
the workspace's: each request goes to an address the egress policy checked, redirects are not
followed, and a refused URL fails at once."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import httpx

from voxline.security import egress
from voxline.security.egress import EgressRefused
from voxline.store import outbox
from voxline.store.database import Database
from voxline.store.models import Workspace
from voxline.tools.signing import SIGNATURE_HEADER, sign

logger = logging.getLogger(__name__)

TASK_HEADER = "Voxline-Task-Id"
_LEASE = timedelta(seconds=60)
_FIRST_BACKOFF = timedelta(seconds=2)
_BATCH = 20


async def deliver_due(
    database: Database, http: httpx.AsyncClient, *, first_backoff: timedelta = _FIRST_BACKOFF
) -> int:
    """Deliver what is due now; how many rows were attempted."""
    async with database.transaction() as db:
        rows = await outbox.claim_due(db, limit=_BATCH, lease=_LEASE)
        secrets = {
            row.workspace_id: (await db.get_one(Workspace, row.workspace_id)).webhook_secret
            for row in rows
        }
        jobs = [
            (row.id, row.url, row.body, row.subject_id, secrets[row.workspace_id]) for row in rows
        ]
    results = await asyncio.gather(
        *(_post(http, url, body, subject, secret) for _, url, body, subject, secret in jobs)
    )
    for (row_id, *_), (error, final) in zip(jobs, results, strict=True):
        async with database.transaction() as db:
            row = await outbox.record_result(
                db, row_id, error=error, backoff=first_backoff, final=final
            )
        if error is not None and row is not None and row.status == "failed":
            logger.warning("webhook %s for %s given up: %s", row.event_type, row.subject_id, error)
    return len(jobs)


async def _post(
    http: httpx.AsyncClient, url: str, body: str, subject: str, secret: str
) -> tuple[str | None, bool]:
    """(the error, None when delivered; whether it is final)."""
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret.encode(), body),
        TASK_HEADER: subject,
    }
    try:
        target = await egress.current().pin(url)
        response = await http.post(
            target.url,
            content=body,
            headers={**headers, **target.headers},
            extensions=target.extensions,
            follow_redirects=False,
        )
    except EgressRefused as exc:
        return f"refused by the egress policy: {exc}", True
    except (httpx.HTTPError, OSError) as exc:
        return type(exc).__name__, False
    if response.status_code >= 300:
        return f"status {response.status_code}", False
    return None, False
