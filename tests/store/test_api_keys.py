from __future__ import annotations

import pytest
from sqlalchemy import select

from voxline.store.api_keys import (
    AuthenticationFailed,
    authenticate,
    create_api_key,
    hash_key,
    list_api_keys,
    revoke_api_key,
)
from voxline.store.database import Database
from voxline.store.errors import NotFound
from voxline.store.models import ApiKey, Workspace


async def test_created_key_authenticates_as_its_workspace(
    database: Database, workspace: Workspace
) -> None:
    async with database.transaction() as db:
        new = await create_api_key(db, workspace.id)
    async with database.transaction() as db:
        key = await authenticate(db, new.secret)
    assert key.workspace_id == workspace.id
    assert key.last_used_at is not None


async def test_only_a_hash_and_a_short_prefix_are_stored(
    database: Database, workspace: Workspace
) -> None:
    async with database.transaction() as db:
        new = await create_api_key(db, workspace.id)
    async with database.transaction() as db:
        stored = await db.scalar(select(ApiKey).where(ApiKey.id == new.record.id))
    assert stored is not None
    assert stored.key_hash == hash_key(new.secret)
    assert new.secret.startswith("vx_live_")
    assert stored.prefix == new.secret[:12]
    assert new.secret not in (stored.key_hash, stored.prefix)


async def test_unknown_key_is_refused(database: Database) -> None:
    unknown = "vx_live_" + "a" * 43
    with pytest.raises(AuthenticationFailed, match="Invalid API key"):
        async with database.transaction() as db:
            await authenticate(db, unknown)


async def test_malformed_key_is_refused(database: Database) -> None:
    with pytest.raises(AuthenticationFailed, match="Invalid API key"):
        async with database.transaction() as db:
            await authenticate(db, "sk_something_else")


async def test_revoked_key_is_refused(database: Database, workspace: Workspace) -> None:
    async with database.transaction() as db:
        new = await create_api_key(db, workspace.id)
    async with database.transaction() as db:
        await revoke_api_key(db, new.record.id)
    with pytest.raises(AuthenticationFailed, match="revoked"):
        async with database.transaction() as db:
            await authenticate(db, new.secret)


async def test_revoking_an_unknown_key_is_not_found(database: Database) -> None:
    with pytest.raises(NotFound):
        async with database.transaction() as db:
            await revoke_api_key(db, "key_missing")


async def test_list_shows_the_workspaces_keys_only(
    database: Database, workspace: Workspace
) -> None:
    async with database.transaction() as db:
        first = await create_api_key(db, workspace.id)
        second = await create_api_key(db, workspace.id)
    async with database.transaction() as db:
        keys = await list_api_keys(db, workspace.id)
    assert {key.id for key in keys} == {first.record.id, second.record.id}
