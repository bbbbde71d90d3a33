"""Databases a test may take down: a PostgreSQL database and role of its own (never the
shared server or another test's database), or a SQLite file made read-only."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import POSTGRES_ADMIN_URL
from voxline.store.database import Database
from voxline.store.migrate import upgrade


class Outage(Protocol):
    url: str

    async def begin(self, database: Database) -> None:
        """Make the database unusable for `database` (and every other client of it)."""
        ...

    async def end(self) -> None: ...


async def _admin(*statements: str) -> None:
    engine = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


class PostgresOutage:
    """A role that owns a database: the outage forbids it to log in and cuts its sessions."""

    def __init__(self, name: str) -> None:
        self.role = name
        self.name = name
        self.url = (
            make_url(POSTGRES_ADMIN_URL)
            .set(username=name, password=None, database=name)
            .render_as_string(hide_password=False)
        )

    async def begin(self, database: Database) -> None:
        await _admin(
            f'ALTER ROLE "{self.role}" NOLOGIN',
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{self.role}'",
        )

    async def end(self) -> None:
        await _admin(f'ALTER ROLE "{self.role}" LOGIN')


class SqliteOutage:
    """The file turns read-only. Tests run as root, which chmod does not stop, so every
    connection is reopened read-only (`query_only`): writes fail with SQLITE_READONLY."""

    def __init__(self, path: Path) -> None:
        self.url = f"sqlite+aiosqlite:///{path}"
        self._read_only = False

    async def begin(self, database: Database) -> None:
        self._read_only = True

        @event.listens_for(database.engine.sync_engine, "checkout")
        def _reopen(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA query_only={int(self._read_only)}")
            cursor.close()

    async def end(self) -> None:
        self._read_only = False


@contextlib.asynccontextmanager
async def outage_of(backend: str, directory: Path) -> AsyncIterator[Outage]:
    """A database of this test's own on `backend` ("sqlite" or "postgresql") to take down."""
    if backend == "sqlite":
        async with sqlite_outage(directory) as sqlite:
            yield sqlite
    else:
        async with postgres_outage() as postgres:
            yield postgres


@contextlib.asynccontextmanager
async def postgres_outage() -> AsyncIterator[PostgresOutage]:
    name = f"voxline_outage_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE ROLE "{name}" LOGIN', f'CREATE DATABASE "{name}" OWNER "{name}"')
    outage = PostgresOutage(name)
    try:
        await _migrate(outage.url)
        yield outage
    finally:
        await _admin(
            f'ALTER ROLE "{name}" LOGIN',
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
            f'DROP ROLE IF EXISTS "{name}"',
        )


@contextlib.asynccontextmanager
async def sqlite_outage(directory: Path) -> AsyncIterator[SqliteOutage]:
    outage = SqliteOutage(directory / "outage.db")
    await _migrate(outage.url)
    yield outage


async def _migrate(url: str) -> None:
    database = Database(url)
    try:
        await upgrade(database)
    finally:
        await database.dispose()
