"""Apply Alembic migrations, and tell whether a database is at the latest revision.

`upgrade` is safe to run from many processes at once on PostgreSQL: they queue on an advisory
lock, and the first one does the work.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from voxline.store.database import Database

_SCRIPT_LOCATION = Path(__file__).parent / "migrations"
# Arbitrary constant naming voxline's migration lock among PostgreSQL advisory locks.
_ADVISORY_LOCK_KEY = 0x766F786C696E65


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPT_LOCATION))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    command.upgrade(_config(connection), "head")


def _current(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


async def upgrade(database: Database) -> None:
    """Bring the schema to the latest revision (a no-op when it already is)."""
    async with database.engine.begin() as connection:
        if database.dialect == "postgresql":
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY}
            )
        await connection.run_sync(_upgrade)


def head_revisions() -> set[str]:
    """The revisions the code expects."""
    return set(ScriptDirectory.from_config(_config()).get_heads())


async def current_revisions(database: Database) -> set[str]:
    """The revisions the database is at (empty before the first migration)."""
    async with database.engine.connect() as connection:
        return await connection.run_sync(_current)


async def is_at_head(database: Database) -> bool:
    """Whether the database schema is exactly what this code expects."""
    return await current_revisions(database) == head_revisions()
