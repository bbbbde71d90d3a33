"""First-start seeding: a "demo" workspace, one API key and a demo agent, so a first call works."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from voxline.agent_spec import AgentSpec, Recording
from voxline.store.agents import create_agent
from voxline.store.api_keys import create_api_key
from voxline.store.database import Database
from voxline.store.errors import Conflict
from voxline.store.workspaces import create_workspace, get_workspace_by_name

DEMO_WORKSPACE = "demo"
DEMO_KEY_FILE = "demo-api-key"


def demo_agent_spec() -> AgentSpec:
    """The demo receptionist, on the embedded offline providers (the `AgentSpec` defaults)."""
    return AgentSpec(
        name="Demo receptionist",
        system_prompt=(
            "You are the friendly receptionist of Voxline Dental, open Monday to Friday, "
            "9am to 5pm. You help callers book, move or cancel appointments and answer "
            "questions about the practice. Answer in one or two short sentences."
        ),
        first_message="Hi, thanks for calling Voxline Dental! How can I help you today?",
        recording=Recording(enabled=True),
    )


@dataclass(frozen=True, slots=True)
class DemoSeed:
    workspace_id: str
    agent_id: str
    api_key: str
    key_file: Path


async def seed_demo(database: Database, data_dir: Path) -> DemoSeed | None:
    """Create the demo workspace, key and agent, unless the workspace exists (then None).

    The key is also written to `data_dir/demo-api-key` (mode 0600) so it can be found later.
    """
    try:
        async with database.transaction() as db:
            if await get_workspace_by_name(db, DEMO_WORKSPACE) is not None:
                return None
            workspace = await create_workspace(db, DEMO_WORKSPACE)
            key = await create_api_key(db, workspace.id)
            agent = await create_agent(db, workspace.id, demo_agent_spec())
    except (Conflict, IntegrityError):
        return None  # another process seeded first
    key_file = data_dir / DEMO_KEY_FILE
    _write_private(key_file, key.secret + "\n")
    return DemoSeed(
        workspace_id=workspace.id, agent_id=agent.id, api_key=key.secret, key_file=key_file
    )


def _write_private(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(content)
