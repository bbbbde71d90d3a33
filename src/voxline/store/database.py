"""The process's database: one async engine, and transactions opened from it.

The same code runs on SQLite (the embedded default) and PostgreSQL. SQLite is made to behave
like a real database: foreign keys enforced, WAL so readers do not block the writer, a busy
timeout instead of instant "database is locked", and `BEGIN IMMEDIATE` so a transaction that
reads then writes cannot fail half-way on a concurrent writer.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

_SQLITE_BUSY_TIMEOUT_MS = 10_000
_CONNECT_TIMEOUT_S = 5.0


class DatabaseConfigError(ValueError):
    """The database URL is unusable (not a URL, or not an async driver we support)."""


class Database:
    """Owns the engine. Use `transaction()` for a unit of work; `dispose()` at shutdown."""

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise DatabaseConfigError(f"invalid database URL: {exc}") from exc
        if parsed.drivername not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
            raise DatabaseConfigError(
                f"unsupported database driver {parsed.drivername!r}: use "
                "'sqlite+aiosqlite:///path.db' or 'postgresql+asyncpg://user@host/db'"
            )
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            if not parsed.database or parsed.database == ":memory:":
                raise DatabaseConfigError(
                    "in-memory SQLite is not supported (each connection would see its own "
                    "empty database): give a file path"
                )
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine: AsyncEngine = create_async_engine(parsed)
            _configure_sqlite(self.engine)
        else:
            # A database that does not answer must fail fast (asyncpg waits 60 s by default):
            # callers spool their records and API clients are told to retry.
            self.engine = create_async_engine(
                parsed, pool_pre_ping=True, connect_args={"timeout": _CONNECT_TIMEOUT_S}
            )
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on exit, rolled back on error."""
        async with self._sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        """Raise if the database cannot be reached."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so that "begin" below decides how to begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Fails, without waiting, only while another connection is converting a new file to
        # WAL; the mode belongs to the file, so this connection uses WAL too once that is done.
        with contextlib.suppress(sqlite3.OperationalError):
            cursor.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL never corrupts the database; a power cut may only lose the last
        # commits. FULL would fsync on every transcript item of every call.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
