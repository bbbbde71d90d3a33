from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from sqlalchemy import select

from voxline.store.database import Database
from voxline.store.models import RelayTokenUse
from voxline.store.token_uses import use_token_once
from voxline.store.types import utcnow


def _token() -> str:
    return uuid.uuid4().hex


async def test_first_use_is_accepted_and_reuse_refused(database: Database) -> None:
    token, expires = _token(), utcnow() + timedelta(minutes=5)
    assert await use_token_once(database, token, expires) is True
    assert await use_token_once(database, token, expires) is False


async def test_concurrent_uses_from_separate_engines_accept_exactly_one(
    database_url: str,
) -> None:
    token, expires = _token(), utcnow() + timedelta(minutes=5)
    engines = [Database(database_url) for _ in range(4)]
    try:
        results = await asyncio.gather(
            *(use_token_once(engine, token, expires) for engine in engines)
        )
    finally:
        for engine in engines:
            await engine.dispose()
    assert sorted(results) == [False, False, False, True]


async def test_expired_rows_are_pruned_by_a_later_use(database: Database) -> None:
    stale = _token()
    await use_token_once(database, stale, utcnow() - timedelta(seconds=1))
    await use_token_once(database, _token(), utcnow() + timedelta(minutes=5))
    async with database.transaction() as db:
        left = await db.scalar(select(RelayTokenUse).where(RelayTokenUse.token_id == stale))
    assert left is None
