from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from voxline.store.database import Database, DatabaseConfigError
from voxline.store.models import InstanceRow, Workspace
from voxline.store.workspaces import get_workspace_by_name


def test_unsupported_driver_is_refused_with_the_supported_ones_named() -> None:
    with pytest.raises(DatabaseConfigError, match="sqlite\\+aiosqlite"):
        Database("postgresql://user@localhost/db")


def test_in_memory_sqlite_is_refused() -> None:
    with pytest.raises(DatabaseConfigError, match="in-memory"):
        Database("sqlite+aiosqlite://")


def test_malformed_url_is_refused() -> None:
    with pytest.raises(DatabaseConfigError, match="invalid database URL"):
        Database("not a url")


async def test_sqlite_directory_is_created(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'nested' / 'dir' / 'x.db'}")
    try:
        await database.ping()
    finally:
        await database.dispose()
    assert (tmp_path / "nested" / "dir" / "x.db").exists()


async def test_foreign_keys_are_enforced(database: Database) -> None:
    with pytest.raises(IntegrityError):
        async with database.transaction() as db:
            db.add(
                InstanceRow(
                    id="inst_x",
                    workspace_id="ws_missing",
                    agent_id="agent_missing",
                    variables={},
                    memory=[],
                )
            )


async def test_transaction_rolls_back_on_error(database: Database) -> None:
    with pytest.raises(RuntimeError):
        async with database.transaction() as db:
            db.add(Workspace(id="ws_rollback", name="rolled-back", webhook_secret="s"))
            await db.flush()
            raise RuntimeError("boom")
    async with database.transaction() as db:
        assert await get_workspace_by_name(db, "rolled-back") is None


async def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'wal.db'}")
    try:
        async with database.engine.connect() as connection:
            mode = (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar()
    finally:
        await database.dispose()
    assert mode == "wal"
