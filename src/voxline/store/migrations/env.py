"""Alembic environment: migrate the connection voxline hands over, or, from the alembic CLI,
the database in voxline's settings."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from voxline.store.models import Base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_standalone() -> None:
    from voxline.config import Settings
    from voxline.store.database import Database

    database = Database(Settings().resolved_database_url())
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await database.dispose()


def _main() -> None:
    if context.is_offline_mode():
        raise SystemExit("voxline migrations run online only: drop --sql")
    connection = context.config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run(connection)
    else:
        asyncio.run(_run_standalone())


_main()
