"""`Idempotency-Key` support for POSTs that create calls: a retried request gets the first
request's response instead of placing a second call.

Protocol: `begin_idempotent` either reserves the key (returns None: do the work, then
`complete_idempotent`, or `release_idempotent` if the work failed so a retry may run it), or
returns the stored response to replay. Keys live 24 hours.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from voxline.store.database import Database
from voxline.store.errors import Conflict
from voxline.store.models import IdempotencyKeyRow
from voxline.store.types import utcnow

IDEMPOTENCY_TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255


class IdempotencyConflict(Conflict):
    """The key was used for a different request, or its first request is still running."""


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status_code: int
    body: Any


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """What must match for a retry to count as the same request."""
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


async def begin_idempotent(
    database: Database, workspace_id: str, key: str, request_hash: str
) -> StoredResponse | None:
    """Reserve `key` for this request (None), or the response to replay."""
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise ValueError(f"an Idempotency-Key is 1 to {MAX_KEY_LENGTH} characters")
    try:
        async with database.transaction() as db:
            existing = await db.scalar(
                select(IdempotencyKeyRow)
                .where(IdempotencyKeyRow.workspace_id == workspace_id)
                .where(IdempotencyKeyRow.key == key)
                .with_for_update()
            )
            if existing is not None and utcnow() - existing.created_at > IDEMPOTENCY_TTL:
                await db.delete(existing)
                await db.flush()
                existing = None
            if existing is None:
                db.add(
                    IdempotencyKeyRow(workspace_id=workspace_id, key=key, request_hash=request_hash)
                )
                return None
            if existing.request_hash != request_hash:
                raise IdempotencyConflict(
                    "this Idempotency-Key was already used with a different request",
                    param="Idempotency-Key",
                )
            if existing.status_code is None:
                raise _in_flight()
            return StoredResponse(status_code=existing.status_code, body=existing.response)
    except IntegrityError as exc:
        # A concurrent request reserved the key between our read and our insert.
        raise _in_flight() from exc


async def complete_idempotent(
    database: Database, workspace_id: str, key: str, status_code: int, body: Any
) -> None:
    """Store the response that retries of this key will get."""
    async with database.transaction() as db:
        await db.execute(
            update(IdempotencyKeyRow)
            .where(IdempotencyKeyRow.workspace_id == workspace_id)
            .where(IdempotencyKeyRow.key == key)
            .values(status_code=status_code, response=body)
        )


async def release_idempotent(database: Database, workspace_id: str, key: str) -> None:
    """Give up a reservation whose work failed, so a retry runs it afresh."""
    async with database.transaction() as db:
        await db.execute(
            delete(IdempotencyKeyRow)
            .where(IdempotencyKeyRow.workspace_id == workspace_id)
            .where(IdempotencyKeyRow.key == key)
            .where(IdempotencyKeyRow.status_code.is_(None))
        )


def _in_flight() -> IdempotencyConflict:
    return IdempotencyConflict(
        "a request with this Idempotency-Key is still in progress; retry later",
        param="Idempotency-Key",
    )
