from __future__ import annotations

import pytest

from voxline.ids import is_valid_id
from voxline.store.database import Database
from voxline.store.errors import Conflict
from voxline.store.models import Workspace
from voxline.store.workspaces import create_workspace, get_or_create_workspace


async def test_new_workspace_has_prefixed_id_and_a_webhook_secret(workspace: Workspace) -> None:
    assert is_valid_id(workspace.id, "ws")
    assert len(workspace.webhook_secret) >= 32


async def test_workspace_names_are_unique(database: Database, workspace: Workspace) -> None:
    with pytest.raises(Conflict, match="already exists"):
        async with database.transaction() as db:
            await create_workspace(db, workspace.name)


async def test_blank_workspace_name_is_refused(database: Database) -> None:
    with pytest.raises(ValueError, match="not blank"):
        async with database.transaction() as db:
            await create_workspace(db, "  ")


async def test_get_or_create_returns_the_existing_workspace(
    database: Database, workspace: Workspace
) -> None:
    async with database.transaction() as db:
        found, created = await get_or_create_workspace(db, workspace.name)
    assert (found.id, created) == (workspace.id, False)
