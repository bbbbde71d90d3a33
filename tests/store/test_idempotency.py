from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update

from voxline.store.database import Database
from voxline.store.idempotency import (
    IDEMPOTENCY_TTL,
    IdempotencyConflict,
    StoredResponse,
    begin_idempotent,
    complete_idempotent,
    release_idempotent,
    request_fingerprint,
)
from voxline.store.models import IdempotencyKeyRow, Workspace
from voxline.store.types import utcnow

HASH = request_fingerprint("POST", "/v1/calls", b'{"to": "+15550001111"}')


def _key() -> str:
    return f"idem-{uuid.uuid4().hex}"


async def test_first_request_reserves_the_key(database: Database, workspace: Workspace) -> None:
    assert await begin_idempotent(database, workspace.id, _key(), HASH) is None


async def test_completed_response_is_replayed(database: Database, workspace: Workspace) -> None:
    key = _key()
    await begin_idempotent(database, workspace.id, key, HASH)
    await complete_idempotent(database, workspace.id, key, 201, {"id": "task_1"})
    replay = await begin_idempotent(database, workspace.id, key, HASH)
    assert replay == StoredResponse(status_code=201, body={"id": "task_1"})


async def test_request_still_in_flight_is_a_conflict(
    database: Database, workspace: Workspace
) -> None:
    key = _key()
    await begin_idempotent(database, workspace.id, key, HASH)
    with pytest.raises(IdempotencyConflict, match="still in progress"):
        await begin_idempotent(database, workspace.id, key, HASH)


async def test_key_reused_for_another_request_is_a_conflict(
    database: Database, workspace: Workspace
) -> None:
    key = _key()
    await begin_idempotent(database, workspace.id, key, HASH)
    other = request_fingerprint("POST", "/v1/calls", b'{"to": "+15550002222"}')
    with pytest.raises(IdempotencyConflict, match="different request"):
        await begin_idempotent(database, workspace.id, key, other)


async def test_released_key_can_be_retried(database: Database, workspace: Workspace) -> None:
    key = _key()
    await begin_idempotent(database, workspace.id, key, HASH)
    await release_idempotent(database, workspace.id, key)
    assert await begin_idempotent(database, workspace.id, key, HASH) is None


async def test_expired_key_is_reserved_afresh(database: Database, workspace: Workspace) -> None:
    key = _key()
    await begin_idempotent(database, workspace.id, key, HASH)
    await complete_idempotent(database, workspace.id, key, 201, {"id": "old"})
    async with database.transaction() as db:
        await db.execute(
            update(IdempotencyKeyRow)
            .where(IdempotencyKeyRow.key == key)
            .values(created_at=utcnow() - IDEMPOTENCY_TTL - timedelta(minutes=1))
        )
    assert await begin_idempotent(database, workspace.id, key, HASH) is None


def test_fingerprint_distinguishes_method_path_and_body() -> None:
    prints = {
        request_fingerprint("POST", "/a", b"x"),
        request_fingerprint("PUT", "/a", b"x"),
        request_fingerprint("POST", "/b", b"x"),
        request_fingerprint("POST", "/a", b"y"),
        request_fingerprint("POST", "/ax", b""),
    }
    assert len(prints) == 5


async def test_overlong_key_is_refused(database: Database, workspace: Workspace) -> None:
    with pytest.raises(ValueError, match="1 to 255"):
        await begin_idempotent(database, workspace.id, "k" * 256, HASH)
