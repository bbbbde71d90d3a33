"""Two `voxline serve` processes dispatching one batch from one PostgreSQL database through
the simulated Twilio, one of them killed with SIGKILL half-way: every task still ends, each
dialed exactly once, and the concurrency cap and calls-per-second pace hold throughout (as
measured by the simulator)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cloud import CloudThread, running_cloud
from tests.e2e.server import RunningServer, running_server, scripted_agent
from voxline.simulator.twilio_cloud import Callee, Timing
from voxline.store.database import Database
from voxline.store.migrate import upgrade
from voxline.store.workspaces import get_or_create_workspace

TASKS = 200
CPS = 20
MAX_CONCURRENCY = 25
FINAL = {"completed", "busy", "no_answer", "failed", "voicemail", "canceled"}


@pytest.fixture
def cloud() -> Iterator[CloudThread]:
    callee = Callee(turn_silence_ms=200, reply_timeout=0.3, max_seconds=0.4)
    with running_cloud(callee=callee, timing=Timing(dial=0.02, ring=0.05)) as running:
        yield running


@pytest.fixture
def servers(
    tmp_path: Path, cloud: CloudThread, _postgres_databases: Any
) -> Iterator[list[RunningServer]]:
    database_url = _postgres_databases.create()
    asyncio.run(_migrate_with_room(database_url))
    env = {
        **cloud.server_env(),
        "VOXLINE_DATABASE_URL": database_url,
        "VOXLINE_SECRET_KEY": "shared-by-both-processes",
        "VOXLINE_TWILIO_CALLS_PER_SECOND": str(CPS),
        "VOXLINE_DISPATCH_POLL_INTERVAL_SECONDS": "0.2",
        "VOXLINE_DISPATCH_LEASE_SECONDS": "10",
        "VOXLINE_DISPATCH_STALE_CALL_SECONDS": "4",
        "VOXLINE_LOG_LEVEL": "warning",
    }

    def start(name: str) -> RunningServer:
        (tmp_path / name).mkdir()
        return stack.enter_context(running_server(tmp_path / name, env))

    with ExitStack() as stack, ThreadPoolExecutor(2) as pool:
        yield list(pool.map(start, ("a", "b")))


async def _migrate_with_room(url: str) -> None:
    """Migrate, and give the test's workspace room for the batch's cap."""
    database = Database(url)
    try:
        await upgrade(database)
        async with database.transaction() as db:
            workspace, _ = await get_or_create_workspace(db, "e2e")
            workspace.max_concurrent_calls = MAX_CONCURRENCY
    finally:
        await database.dispose()


def _task_id(url: str) -> str:
    return url.split("/v1/sessions/twilio/task/")[1].split("/")[0]


def test_two_processes_share_the_queue_and_survive_a_kill(
    servers: list[RunningServer], cloud: CloudThread
) -> None:
    first, second = servers
    agent = scripted_agent(firstMessage="Hi.", tools=[])
    with first.client() as client:
        agent_id = client.post("/v1/agents", json=agent).json()["id"]
        response = client.post(
            "/v1/batches",
            json={
                "agentId": agent_id,
                "from": "+14155550100",
                "maxConcurrency": MAX_CONCURRENCY,
                "tasks": [{"to": f"+1555{n:07d}"} for n in range(TASKS)],
            },
        )
        assert response.status_code == 201, response.text
        batch_id = response.json()["id"]

    deadline = time.monotonic() + 30
    while len(cloud.cloud.creates) < TASKS // 3:
        assert time.monotonic() < deadline, "dispatching did not start"
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGKILL)

    deadline = time.monotonic() + 75
    with second.client() as client:
        while True:
            batch = client.get(f"/v1/batches/{batch_id}").json()
            ended = sum(count for status, count in batch["counts"].items() if status in FINAL)
            if ended == TASKS:
                break
            assert time.monotonic() < deadline, (batch["counts"], second.log()[-3000:])
            time.sleep(0.5)
        tasks: list[dict[str, Any]] = []
        after = None
        while True:
            params = {"batchId": batch_id, "limit": 100, **({"after": after} if after else {})}
            page = client.get("/v1/tasks", params=params).json()
            tasks += page["data"]
            if not page["hasMore"]:
                break
            after = page["nextCursor"]

    creates = [record for record in cloud.cloud.creates if record.accepted]
    dialed = Counter(_task_id(record.values("Url")[0]) for record in creates)
    assert len(tasks) == TASKS
    # Each task was dialed exactly once: no attempt lost, none placed twice.
    assert set(dialed) == {task["id"] for task in tasks}
    assert max(dialed.values()) == 1
    assert all(len(task["attempts"]) == 1 for task in tasks)
    assert {task["attempts"][0]["callSid"] for task in tasks} == {r.call_sid for r in creates}
    assert cloud.cloud.max_live <= MAX_CONCURRENCY
    assert cloud.cloud.max_creates_per_second() <= CPS
