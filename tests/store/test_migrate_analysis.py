"""Migration 0005_analysis gives the memory notes stored before it stable IDs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

import voxline.store.migrate
from voxline.ids import is_valid_id
from voxline.store.database import Database
from voxline.store.instances import get_instance, memory_notes
from voxline.store.migrate import upgrade
from voxline.store.types import json_type

_NOW = datetime(2025, 1, 1, tzinfo=UTC)
_OLD_NOTES = [
    {"text": "Prefers mornings", "created_at": "2025-01-01T00:00:00+00:00"},
    {"text": "Has a dog", "created_at": "2025-01-02T00:00:00+00:00"},
]


def _to_0002(connection: Connection) -> None:
    config = Config()
    migrations = Path(voxline.store.migrate.__file__).parent / "migrations"
    config.set_main_option("script_location", str(migrations))
    config.attributes["connection"] = connection
    command.upgrade(config, "0002")


async def test_notes_stored_before_get_ids_and_memory_stays_on(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(_to_0002)
            now = sa.literal(_NOW, sa.DateTime(timezone=True))
            await connection.execute(
                sa.text(
                    "INSERT INTO workspaces (id, name, webhook_secret, created_at) "
                    "VALUES ('ws_1', 'old', 'secret', :now)"
                ),
                {"now": _NOW},
            )
            agents = sa.table(
                "agents",
                sa.column("id"),
                sa.column("workspace_id"),
                sa.column("name"),
                sa.column("spec", json_type()),
                sa.column("created_at"),
                sa.column("updated_at"),
            )
            await connection.execute(
                agents.insert().values(
                    id="agent_1",
                    workspace_id="ws_1",
                    name="a",
                    spec={"name": "a"},
                    created_at=now,
                    updated_at=now,
                )
            )
            instances = sa.table(
                "instances",
                sa.column("id"),
                sa.column("workspace_id"),
                sa.column("agent_id"),
                sa.column("variables", json_type()),
                sa.column("memory", json_type()),
                sa.column("created_at"),
                sa.column("updated_at"),
            )
            await connection.execute(
                instances.insert().values(
                    id="inst_1",
                    workspace_id="ws_1",
                    agent_id="agent_1",
                    variables={},
                    memory=_OLD_NOTES,
                    created_at=now,
                    updated_at=now,
                )
            )
        await upgrade(database)
        async with database.transaction() as db:
            row = await get_instance(db, "ws_1", "inst_1")
        notes = memory_notes(row)
        assert [note.text for note in notes] == ["Prefers mornings", "Has a dog"]
        assert all(is_valid_id(note.id, "note") for note in notes)
        assert len({note.id for note in notes}) == 2
        assert row.memory_enabled is True
    finally:
        await database.dispose()
