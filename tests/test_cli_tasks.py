from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from voxline.agent_spec import AgentSpec, ScriptedLlm
from voxline.cli import main
from voxline.store.agents import create_agent
from voxline.store.database import Database
from voxline.store.workspaces import create_workspace


@pytest.fixture
def agent_id(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> str:
    monkeypatch.setenv("VOXLINE_DATABASE_URL", database_url)
    monkeypatch.setenv("VOXLINE_DATA_DIR", str(tmp_path))

    async def make() -> str:
        database = Database(database_url)
        try:
            async with database.transaction() as db:
                workspace = await create_workspace(db, f"cli-{uuid.uuid4().hex[:10]}")
                agent = await create_agent(
                    db, workspace.id, AgentSpec(name="Out", llm=ScriptedLlm())
                )
                return agent.id
        finally:
            await database.dispose()

    return asyncio.run(make())


def test_create_show_list_and_cancel(agent_id: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "tasks",
                "create",
                "--agent",
                agent_id,
                "--to",
                "+14155550101",
                "--from",
                "+14155550100",
                "--at",
                "2099-01-01T09:00:00+00:00",
                "--max-attempts",
                "2",
                "--retry-on",
                "busy",
                "--metadata",
                '{"row": 3}',
            ]
        )
        == 0
    )
    task_id = capsys.readouterr().out.strip()
    assert task_id.startswith("task_")
    assert main(["tasks", "show", task_id]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "waiting" and shown["metadata"] == {"row": 3}
    assert shown["retry"] == {"maxAttempts": 2, "on": ["busy"], "backoffSeconds": 600}
    assert main(["tasks", "list", "--agent", agent_id]) == 0
    listed = capsys.readouterr().out
    assert task_id in listed and "waiting" in listed
    assert main(["tasks", "cancel", task_id]) == 0
    assert "canceled" in capsys.readouterr().err
    assert main(["tasks", "list", "--agent", agent_id, "--status", "canceled"]) == 0
    assert task_id in capsys.readouterr().out


def test_invalid_numbers_are_refused(agent_id: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["tasks", "create", "--agent", agent_id, "--to", "555", "--from", "+14155550100"])
    assert code == 2
    assert "invalid task" in capsys.readouterr().err


def test_unknown_task_is_a_one_line_error(
    agent_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tasks", "show", "task_01jd000000000000000000000x"]) == 1
    assert "No such task" in capsys.readouterr().err


def test_workspace_call_limit_is_shown_and_set(
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("VOXLINE_DATABASE_URL", database_url)
    monkeypatch.setenv("VOXLINE_DATA_DIR", str(tmp_path))
    name = f"cli-{uuid.uuid4().hex[:10]}"
    assert main(["keys", "create", "--workspace", name]) == 0
    capsys.readouterr()
    assert main(["workspaces", "call-limit", "--workspace", name]) == 0
    assert "10 outbound calls" in capsys.readouterr().out
    assert main(["workspaces", "call-limit", "--workspace", name, "25"]) == 0
    assert main(["workspaces", "call-limit", "--workspace", name]) == 0
    assert "25 outbound calls" in capsys.readouterr().out.splitlines()[-1]
    assert main(["workspaces", "call-limit", "--workspace", name, "0"]) == 1
