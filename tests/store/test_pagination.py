from __future__ import annotations

import pytest

from voxline.agent_spec import AgentSpec
from voxline.store.agents import create_agent, list_agents
from voxline.store.database import Database
from voxline.store.models import Workspace


async def test_pages_cover_every_item_once_in_order(
    database: Database, workspace: Workspace
) -> None:
    async with database.transaction() as db:
        for i in range(5):
            await create_agent(db, workspace.id, AgentSpec(name=f"a{i}"))
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        async with database.transaction() as db:
            page = await list_agents(db, workspace.id, limit=2, after=after)
        pages += 1
        seen.extend(row.id for row in page.items)
        if not page.has_more:
            assert page.next_cursor is None
            break
        assert page.next_cursor == page.items[-1].id
        after = page.next_cursor
    assert pages == 3
    assert seen == sorted(seen, reverse=True)
    assert len(set(seen)) == 5


async def test_exactly_full_last_page_has_no_more(database: Database, workspace: Workspace) -> None:
    async with database.transaction() as db:
        for i in range(2):
            await create_agent(db, workspace.id, AgentSpec(name=f"a{i}"))
        page = await list_agents(db, workspace.id, limit=2, after=None)
    assert (len(page.items), page.has_more, page.next_cursor) == (2, False, None)


@pytest.mark.parametrize("limit", [0, 101])
async def test_limit_out_of_range_is_refused(
    database: Database, workspace: Workspace, limit: int
) -> None:
    with pytest.raises(ValueError, match="limit"):
        async with database.transaction() as db:
            await list_agents(db, workspace.id, limit=limit, after=None)
