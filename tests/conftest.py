"""Database fixtures shared by the store, API and CLI tests.

`database_url` runs a test once on SQLite and once on PostgreSQL. Each test run gets its own
freshly migrated PostgreSQL database (dropped at the end) and SQLite file; tests isolate
themselves further by creating their own workspaces. PostgreSQL must be reachable
(VOXLINE_TEST_POSTGRES_URL, default postgres@127.0.0.1:5432/test): if it is not, the
PostgreSQL tests error, they never skip.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from voxline.security import egress
from voxline.security.egress import EgressPolicy
from voxline.store.database import Database
from voxline.store.migrate import upgrade

POSTGRES_ADMIN_URL = os.environ.get(
    "VOXLINE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ("sqlite", "postgresql")


async def _admin(statement: str) -> None:
    engine = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def _migrate(url: str) -> None:
    database = Database(url)
    try:
        await upgrade(database)
    finally:
        await database.dispose()


class _PostgresDatabases:
    """Creates uniquely named PostgreSQL databases and drops them all at the end."""

    def __init__(self) -> None:
        self._names: list[str] = []

    def create(self) -> str:
        name = f"voxline_test_{os.getpid()}_{uuid.uuid4().hex[:12]}"
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
        self._names.append(name)
        return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        for name in self._names:
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def _postgres_databases() -> Iterator[_PostgresDatabases]:
    databases = _PostgresDatabases()
    try:
        yield databases
    finally:
        databases.drop_all()


@pytest.fixture(scope="session")
def _migrated_sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'voxline.db'}"
    asyncio.run(_migrate(url))
    return url


@pytest.fixture(scope="session")
def _migrated_postgres_url(_postgres_databases: _PostgresDatabases) -> str:
    url = _postgres_databases.create()
    asyncio.run(_migrate(url))
    return url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    """A migrated database shared by this test run, on each backend in turn."""
    name = "_migrated_sqlite_url" if request.param == "sqlite" else "_migrated_postgres_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture(params=BACKENDS)
def empty_database_url(
    request: pytest.FixtureRequest, tmp_path: Path, _postgres_databases: _PostgresDatabases
) -> str:
    """A database of this test's own, with no tables yet, on each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    return _postgres_databases.create()


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def loopback_egress() -> Iterator[None]:
    """Opens loopback to the egress policy, as development mode does: for tests whose vendor
    fakes and webhook endpoints listen on 127.0.0.1."""
    previous = egress.install(EgressPolicy(allow_loopback=True))
    try:
        yield
    finally:
        egress.install(previous)
