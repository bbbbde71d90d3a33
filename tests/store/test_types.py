from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import StatementError

from voxline.store.database import Database
from voxline.store.models import Workspace


async def test_timestamps_come_back_timezone_aware_utc(database: Database) -> None:
    paris = timezone(timedelta(hours=1))
    written = datetime(2025, 1, 2, 13, 4, 5, 123456, tzinfo=paris)
    async with database.transaction() as db:
        db.add(Workspace(id="ws_tz", name="tz", webhook_secret="s", created_at=written))
    async with database.transaction() as db:
        row = await db.get(Workspace, "ws_tz")
        assert row is not None
        assert row.created_at.tzinfo == UTC
        assert row.created_at == written
        await db.delete(row)


async def test_naive_timestamps_are_refused(database: Database) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        async with database.transaction() as db:
            db.add(
                Workspace(
                    id="ws_naive", name="naive", webhook_secret="s", created_at=datetime.now()
                )
            )
