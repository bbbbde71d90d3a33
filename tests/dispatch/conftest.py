from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from tests.dispatch.fake_calls import ACCOUNT_SID, AUTH_TOKEN, FakeCalls
from voxline.agent_spec import AgentSpec, ScriptedLlm
from voxline.config import Settings
from voxline.dispatch.dispatcher import Dispatcher
from voxline.store.agents import create_agent
from voxline.store.database import Database
from voxline.store.models import AgentRow, TaskRow, Workspace
from voxline.store.workspaces import create_workspace


def dispatch_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path,
        "public_base_url": "https://voice.example.com",
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_calls_per_second": 100.0,
        "dispatch_lease_seconds": 5.0,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture
async def workspace(database: Database) -> Workspace:
    async with database.transaction() as db:
        return await create_workspace(db, f"ws-{uuid.uuid4().hex[:10]}")


@pytest.fixture
async def agent(database: Database, workspace: Workspace) -> AgentRow:
    spec = AgentSpec(name="Caller", llm=ScriptedLlm(), webhook_url="http://127.0.0.1:9/hooks")
    async with database.transaction() as db:
        return await create_agent(db, workspace.id, spec)


@pytest.fixture
def fake() -> FakeCalls:
    return FakeCalls()


@pytest.fixture
async def dispatcher(
    database: Database, fake: FakeCalls, tmp_path: Path
) -> AsyncIterator[Dispatcher]:
    # Every test shares one account's pacing row per database: a fresh account each time.
    account = "AC" + uuid.uuid4().hex
    settings = dispatch_settings(tmp_path, twilio_account_sid=account)
    hooks = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(204)))
    dispatcher = Dispatcher(settings, database, fake.client(), hooks)
    await end_open_tasks(database)
    try:
        yield dispatcher
    finally:
        await dispatcher.aclose()
        await hooks.aclose()
        await end_open_tasks(database)


async def end_open_tasks(database: Database) -> None:
    """The databases are shared by the tests of a run: no test may dial another's tasks."""
    async with database.transaction() as db:
        await db.execute(
            update(TaskRow).where(TaskRow.status == "waiting").values(status="canceled")
        )
