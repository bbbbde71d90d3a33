"""Outbound dispatch: from a task's due time to Twilio's create, and tasks dispatched per
second, against the simulated Twilio (`voxline.simulator.twilio_cloud`).

Each case starts 1 or 2 `voxline serve` processes on SQLite or on one PostgreSQL database,
queues a batch of tasks due now, and reads the simulator's create records: latency is the
create's arrival minus the task's due time (most of it is the wait for a slot in the CPS
pace, by design), throughput is creates per second from the first to the last. Callees are
busy, so calls end at once and only dispatching is measured.

    .venv/bin/python bench/bench_dispatch.py                 # the full table (minutes)
    .venv/bin/python bench/bench_dispatch.py --smoke         # one tiny case
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import describe_machine, distribution, fmt
from tests.e2e.cloud import CloudThread, running_cloud

from voxline.simulator.server_process import LocalServer, running_server
from voxline.store.database import Database
from voxline.store.migrate import upgrade
from voxline.store.workspaces import get_or_create_workspace

POSTGRES_ADMIN_URL = os.environ.get(
    "VOXLINE_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
WORKSPACE = "bench"


@dataclass(frozen=True)
class Case:
    backend: str
    processes: int
    cps: float
    tasks: int


@dataclass(frozen=True)
class Result:
    case: Case
    latency_ms: dict[str, float | int | None]
    tasks_per_s: float
    dialed: int


async def _admin(statement: str) -> None:
    engine = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def _prepare(url: str, max_live: int) -> None:
    database = Database(url)
    try:
        await upgrade(database)
        async with database.transaction() as session:
            workspace, _ = await get_or_create_workspace(session, WORKSPACE)
            workspace.max_concurrent_calls = max_live
    finally:
        await database.dispose()


@contextmanager
def database_url(backend: str, scratch: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{scratch / 'bench.db'}"
        return
    name = f"voxline_bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def run_case(case: Case) -> Result:
    with (
        tempfile.TemporaryDirectory(prefix="voxline-bench-dispatch-") as tmp,
        running_cloud(default_outcome="busy") as cloud,
        database_url(case.backend, Path(tmp)) as url,
    ):
        asyncio.run(_prepare(url, max_live=max(10, int(case.cps * 2))))
        env = {
            **cloud.server_env(),
            "VOXLINE_DATABASE_URL": url,
            "VOXLINE_SECRET_KEY": "bench",
            "VOXLINE_SEED_DEMO_AGENT": "false",
            "VOXLINE_PRELOAD_MODELS": "false",
            "VOXLINE_LOG_LEVEL": "warning",
            "VOXLINE_TWILIO_CALLS_PER_SECOND": str(case.cps),
            "VOXLINE_DISPATCH_POLL_INTERVAL_SECONDS": "0.05",
        }
        with _servers(Path(tmp), env, case.processes) as servers:
            return _measure(case, servers[0], cloud)


@contextmanager
def _servers(root: Path, env: dict[str, str], count: int) -> Iterator[list[LocalServer]]:
    def start(index: int) -> LocalServer:
        data_dir = root / f"server{index}"
        data_dir.mkdir()
        return stack.enter_context(running_server(data_dir, env, workspace=WORKSPACE))

    with ExitStack() as stack, ThreadPoolExecutor(count) as pool:
        yield list(pool.map(start, range(count)))


def _measure(case: Case, server: LocalServer, cloud: CloudThread) -> Result:
    agent = {
        "name": "bench",
        "systemPrompt": "You remind people of appointments.",
        "firstMessage": "Hi.",
        "stt": {"provider": "scripted", "transcripts": ["ok"]},
        "llm": {"provider": "scripted", "rules": [{"match": "ok", "say": "Bye."}]},
        "tts": {"provider": "scripted"},
        "turnTaking": {"vad": "energy"},
    }
    with server.client(timeout=60.0) as client:
        created = client.post("/v1/agents", json=agent)
        created.raise_for_status()
        agent_id = created.json()["id"]
        tasks = [{"to": f"+1555{n:07d}"} for n in range(case.tasks)]
        response = client.post(
            "/v1/batches", json={"agentId": agent_id, "from": "+14155550100", "tasks": tasks}
        )
        response.raise_for_status()
        due = datetime.fromisoformat(response.json()["createdAt"])
    deadline = time.monotonic() + case.tasks / case.cps * 3 + 60
    while sum(1 for record in cloud.cloud.creates if record.accepted) < case.tasks:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    creates = sorted(
        (record for record in cloud.cloud.creates if record.accepted),
        key=lambda record: record.received_at,
    )
    latencies = [(record.received_wall - due).total_seconds() * 1000 for record in creates]
    span = creates[-1].received_at - creates[0].received_at if len(creates) > 1 else 0.0
    rate = (len(creates) - 1) / span if span > 0 else 0.0
    return Result(case, distribution(latencies), rate, len(creates))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="one tiny case (SQLite, CPS 10)")
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--cps", type=float, nargs="+", default=[1.0, 10.0, 100.0])
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="tasks per case: CPS x this (at least 10)"
    )
    args = parser.parse_args()
    if args.smoke:
        cases = [Case("sqlite", 1, 10.0, 10)]
    else:
        cases = [
            Case(backend, processes, cps, max(10, int(cps * args.seconds)))
            for backend in args.backends
            for processes in ((1,) if backend == "sqlite" else (1, 2))
            for cps in args.cps
        ]
    print(describe_machine())
    print("| database | processes | CPS | tasks | due -> create p50 (ms) | p99 (ms) | tasks/s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for case in cases:
        result = run_case(case)
        latency = result.latency_ms
        print(
            f"| {case.backend} | {case.processes} | {case.cps:g} | {result.dialed}/{case.tasks} "
            f"| {fmt(latency['p50'])} | {fmt(latency['p99'])} | {result.tasks_per_s:.1f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
