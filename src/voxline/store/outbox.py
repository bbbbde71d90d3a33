"""The webhook outbox: events stored in the transaction that caused them, then delivered
(by any process) with retries, so neither a crash nor a restart loses one.

A row is claimed by pushing its `next_attempt_at` past a lease (`FOR UPDATE SKIP LOCKED` on
PostgreSQL), so two processes never deliver it at once; a process that dies mid-delivery
leaves it to be retried when the lease ends (receivers may see an event twice, never zero
times).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from voxline.store.models import WebhookOutboxRow
from voxline.store.types import utcnow

MAX_DELIVERY_ATTEMPTS = 10
_MAX_BACKOFF = timedelta(hours=1)


async def enqueue(
    db: AsyncSession,
    *,
    workspace_id: str,
    url: str,
    event_type: str,
    subject_id: str,
    body: str,
) -> None:
    now = utcnow()
    db.add(
        WebhookOutboxRow(
            workspace_id=workspace_id,
            url=url,
            event_type=event_type,
            subject_id=subject_id,
            body=body,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    await db.flush()


async def claim_due(
    db: AsyncSession, *, limit: int, lease: timedelta, now: datetime | None = None
) -> list[WebhookOutboxRow]:
    """Pending deliveries due now, leased to the caller for `lease`."""
    now = now or utcnow()
    rows = list(
        await db.scalars(
            select(WebhookOutboxRow)
            .where(WebhookOutboxRow.status == "pending", WebhookOutboxRow.next_attempt_at <= now)
            .order_by(WebhookOutboxRow.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    for row in rows:
        row.next_attempt_at = now + lease
    await db.flush()
    return rows


async def record_result(
    db: AsyncSession,
    row_id: int,
    *,
    error: str | None,
    backoff: timedelta,
    final: bool = False,
) -> WebhookOutboxRow | None:
    """Delivered (`error` None) or failed once more: retried after an exponential backoff
    from `backoff`, given up after `MAX_DELIVERY_ATTEMPTS` (at once when `final`)."""
    row = await db.get(WebhookOutboxRow, row_id, with_for_update=True)
    if row is None or row.status != "pending":
        return row
    row.attempts += 1
    if error is None:
        row.status = "delivered"
        row.last_error = None
        return row
    row.last_error = error[:500]
    if final or row.attempts >= MAX_DELIVERY_ATTEMPTS:
        row.status = "failed"
    else:
        delay = min(backoff * 2 ** (row.attempts - 1), _MAX_BACKOFF)
        row.next_attempt_at = utcnow() + delay
    return row
