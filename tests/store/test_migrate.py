from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from voxline.store.database import Database
from voxline.store.migrate import current_revisions, head_revisions, is_at_head, upgrade
from voxline.store.models import Base


async def test_empty_database_is_not_at_head(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    try:
        assert await current_revisions(database) == set()
        assert not await is_at_head(database)
    finally:
        await database.dispose()


async def test_upgrade_creates_every_table_and_reaches_head(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    try:
        await upgrade(database)
        async with database.engine.connect() as connection:
            tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert set(Base.metadata.tables) <= tables
        assert await is_at_head(database)
    finally:
        await database.dispose()


async def test_upgrade_twice_is_a_no_op(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    try:
        await upgrade(database)
        await upgrade(database)
        assert await current_revisions(database) == head_revisions()
    finally:
        await database.dispose()


async def test_concurrent_upgrades_from_separate_engines_all_succeed(
    empty_database_url: str,
) -> None:
    databases = [Database(empty_database_url) for _ in range(3)]
    try:
        await asyncio.gather(*(upgrade(database) for database in databases))
        assert await is_at_head(databases[0])
    finally:
        for database in databases:
            await database.dispose()


def _schema_differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrations_match_the_models(database: Database) -> None:
    async with database.engine.connect() as connection:
        differences = await connection.run_sync(_schema_differences)
    assert differences == []
