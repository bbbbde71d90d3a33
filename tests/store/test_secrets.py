from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, update

from voxline.security.secret_box import CorruptSecret, SecretBox, WrongServerSecret
from voxline.store.database import Database
from voxline.store.errors import NotFound
from voxline.store.models import Workspace, WorkspaceSecret
from voxline.store.secrets import (
    MAX_SECRET_CHARS,
    delete_secret,
    get_secret,
    list_secrets,
    put_secret,
    sealed_secrets,
)
from voxline.store.workspaces import create_workspace

BOX = SecretBox(b"store-test-server-secret")
VALUE = "sk-store-test-" + "x" * 30


async def _put(database: Database, workspace_id: str, name: str, value: str = VALUE) -> bool:
    async with database.transaction() as db:
        _, created = await put_secret(db, BOX, workspace_id, name, value)
    return created


async def _get(database: Database, workspace_id: str, name: str, box: SecretBox = BOX) -> str:
    async with database.transaction() as db:
        return await get_secret(db, box, workspace_id, name)


async def _other_workspace(database: Database) -> Workspace:
    async with database.transaction() as db:
        return await create_workspace(db, f"other-{uuid.uuid4().hex[:10]}")


async def test_a_stored_secret_reads_back_decrypted(
    database: Database, workspace: Workspace
) -> None:
    assert await _put(database, workspace.id, "openai") is True
    assert await _get(database, workspace.id, "openai") == VALUE


async def test_the_stored_row_holds_only_ciphertext(
    database: Database, workspace: Workspace
) -> None:
    await _put(database, workspace.id, "openai")
    async with database.transaction() as db:
        row = await db.get_one(WorkspaceSecret, (workspace.id, "openai"))
    assert VALUE.encode() not in row.ciphertext
    assert row.ciphertext.startswith(b"v1")


async def test_putting_again_replaces_the_value_and_keeps_created_at(
    database: Database, workspace: Workspace
) -> None:
    async with database.transaction() as db:
        first, _ = await put_secret(db, BOX, workspace.id, "groq", "gsk-one")
    async with database.transaction() as db:
        second, created = await put_secret(db, BOX, workspace.id, "groq", "gsk-two")
    assert created is False
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    assert await _get(database, workspace.id, "groq") == "gsk-two"


async def test_a_missing_secret_is_not_found(database: Database, workspace: Workspace) -> None:
    with pytest.raises(NotFound, match="'absent'"):
        await _get(database, workspace.id, "absent")


async def test_another_workspaces_secret_is_not_found(
    database: Database, workspace: Workspace
) -> None:
    await _put(database, workspace.id, "openai")
    other = await _other_workspace(database)
    with pytest.raises(NotFound):
        await _get(database, other.id, "openai")


async def test_two_workspaces_keep_separate_values_under_one_name(
    database: Database, workspace: Workspace
) -> None:
    other = await _other_workspace(database)
    await _put(database, workspace.id, "openai", "sk-mine")
    assert await _put(database, other.id, "openai", "sk-theirs") is True
    assert await _get(database, workspace.id, "openai") == "sk-mine"
    assert await _get(database, other.id, "openai") == "sk-theirs"


async def test_a_row_moved_to_another_workspace_fails_to_decrypt(
    database: Database, workspace: Workspace
) -> None:
    other = await _other_workspace(database)
    await _put(database, workspace.id, "openai")
    async with database.transaction() as db:
        await db.execute(
            update(WorkspaceSecret)
            .where(WorkspaceSecret.workspace_id == workspace.id)
            .values(workspace_id=other.id)
        )
    with pytest.raises(CorruptSecret):
        await _get(database, other.id, "openai")


async def test_a_changed_server_secret_fails_to_decrypt(
    database: Database, workspace: Workspace
) -> None:
    await _put(database, workspace.id, "openai")
    with pytest.raises(WrongServerSecret):
        await _get(database, workspace.id, "openai", SecretBox(b"a-new-server-secret"))


async def test_list_gives_names_in_order_a_page_at_a_time(
    database: Database, workspace: Workspace
) -> None:
    for name in ("cartesia", "anthropic", "openai"):
        await _put(database, workspace.id, name)
    async with database.transaction() as db:
        first = await list_secrets(db, workspace.id, limit=2, after=None)
        assert first.next_cursor is not None
        second = await list_secrets(db, workspace.id, limit=2, after=first.next_cursor)
    assert [info.name for info in first.items] == ["anthropic", "cartesia"]
    assert first.has_more is True
    assert [info.name for info in second.items] == ["openai"]
    assert (second.has_more, second.next_cursor) == (False, None)


async def test_list_is_scoped_to_the_workspace(database: Database, workspace: Workspace) -> None:
    await _put(database, workspace.id, "openai")
    other = await _other_workspace(database)
    async with database.transaction() as db:
        page = await list_secrets(db, other.id, limit=10, after=None)
    assert page.items == []


async def test_sealed_secrets_returns_only_the_named_ones_that_exist(
    database: Database, workspace: Workspace
) -> None:
    await _put(database, workspace.id, "openai")
    await _put(database, workspace.id, "deepgram")
    async with database.transaction() as db:
        sealed = await sealed_secrets(db, workspace.id, ["openai", "groq"])
    assert set(sealed) == {"openai"}
    assert BOX.open(sealed["openai"], workspace_id=workspace.id, name="openai") == VALUE


async def test_delete_removes_the_secret(database: Database, workspace: Workspace) -> None:
    await _put(database, workspace.id, "openai")
    async with database.transaction() as db:
        await delete_secret(db, workspace.id, "openai")
    with pytest.raises(NotFound):
        await _get(database, workspace.id, "openai")


async def test_deleting_a_missing_secret_is_not_found(
    database: Database, workspace: Workspace
) -> None:
    with pytest.raises(NotFound):
        async with database.transaction() as db:
            await delete_secret(db, workspace.id, "absent")


async def test_deleting_the_workspace_deletes_its_secrets(
    database: Database, workspace: Workspace
) -> None:
    await _put(database, workspace.id, "openai")
    async with database.transaction() as db:
        await db.delete(await db.get_one(Workspace, workspace.id))
    async with database.transaction() as db:
        rows = await db.scalars(
            select(WorkspaceSecret).where(WorkspaceSecret.workspace_id == workspace.id)
        )
        assert list(rows) == []


@pytest.mark.parametrize(
    "value",
    ["", "x" * (MAX_SECRET_CHARS + 1), "sk-line\nbreak", " sk-padded", "sk-tab\t"],
    ids=["empty", "too-long", "newline", "leading-space", "control-char"],
)
async def test_an_unstorable_value_is_refused(
    database: Database, workspace: Workspace, value: str
) -> None:
    with pytest.raises(ValueError, match="secret value"):
        await _put(database, workspace.id, "openai", value)


async def test_an_invalid_name_is_refused(database: Database, workspace: Workspace) -> None:
    with pytest.raises(ValueError, match="secret name"):
        await _put(database, workspace.id, "-bad/name")
