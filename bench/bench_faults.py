"""Faults against real server processes: a deploy's drain and a database outage (issue 13).

1. Drain: `--calls` simulated Twilio callers are live on one `voxline serve` when it gets
   SIGTERM. Half of them hang up during the drain; the others are still talking at the drain
   timeout (`--drain-seconds`). Reports how many calls ended naturally, how many heard the
   goodbye before being hung up, how they are recorded, and how long the process took to exit.
2. Outage: `--calls` callers on a server whose PostgreSQL database (a role and database made
   for the run, never another one) stops accepting its logins right after the greetings.
   Each caller says `--turns` lines during the outage and hangs up; then the database comes
   back. Reports the spool's depth during the outage, how many transcript items and turn
   metrics were stored of those expected, how many sessions were finalized, and how long
   the catch-up took.

Prints figures; asserts nothing. Run: `.venv/bin/python bench/bench_faults.py
[--calls 4 --turns 6 --drain-seconds 3] [--postgres-admin-url URL]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from harness import Server, create_agent, local_server
from voxline.simulator.dial import dial_with_api_key
from voxline.simulator.speech import synthesize_caller_speech
from voxline.simulator.twilio_peer import SimulatedTwilioCall
from voxline.store.database import Database
from voxline.store.models import SessionRow

GOODBYE = "We are restarting for maintenance. Please call back. Goodbye."
_SERVER_ENV = {"VOXLINE_SEED_DEMO_AGENT": "false", "VOXLINE_PRELOAD_MODELS": "false"}
_AGENT: dict[str, Any] = {
    "name": "Faults",
    "systemPrompt": "You are a receptionist.",
    "firstMessage": "Hello, thanks for calling.",
    "stt": {"provider": "scripted", "transcripts": ["what are your hours"], "latencyMs": 50},
    "llm": {
        "provider": "scripted",
        "firstTokenMs": 50,
        "defaultReply": "We are open from nine to five.",
    },
    "tts": {"provider": "scripted", "firstByteMs": 20, "msPerCharacter": 40},
    "turnTaking": {"vad": "energy"},
}


async def _greeted(server: Server, http: httpx.AsyncClient, agent_id: str) -> tuple[str, Any]:
    dialed = await dial_with_api_key(http, server.base_url, agent_id, server.api_key)
    call = SimulatedTwilioCall(dialed.stream_url, relay=dialed.relay, open_timeout=60)
    await call.start()
    await call.wait_for_agent_audio(timeout=10)
    await call.wait_until_agent_silent(600, timeout=15)
    return dialed.session_id, call


async def _sessions_in(data_dir: Path, ids: list[str]) -> dict[str, SessionRow]:
    database = Database(f"sqlite+aiosqlite:///{data_dir / 'voxline.db'}")
    try:
        async with database.transaction() as db:
            rows = await db.scalars(select(SessionRow).where(SessionRow.id.in_(ids)))
            return {row.id: row for row in rows}
    finally:
        await database.dispose()


async def bench_drain(calls: int, drain_s: float) -> None:
    env = {
        **_SERVER_ENV,
        "VOXLINE_DRAIN_TIMEOUT_SECONDS": str(drain_s),
        "VOXLINE_DRAIN_MESSAGE": GOODBYE,
    }
    with tempfile.TemporaryDirectory(prefix="voxline-bench-") as tmp:
        data_dir = Path(tmp)
        with local_server(env, data_dir=data_dir) as server:
            agent_id = create_agent(server, _AGENT)
            async with httpx.AsyncClient(timeout=30) as http:
                live = [await _greeted(server, http, agent_id) for _ in range(calls)]
            assert server.pid is not None
            os.kill(server.pid, signal.SIGTERM)
            signalled = time.monotonic()
            leaving, staying = live[: calls // 2], live[calls // 2 :]
            await asyncio.sleep(0.5)
            for _, call in leaving:
                await call.hang_up()
            heard = 0
            for _, call in staying:
                since = call.now() - (time.monotonic() - signalled) + drain_s * 0.5
                try:
                    await call.wait_for_agent_audio(timeout=drain_s + 15, since=since)
                    await call.wait_closed(timeout=30)
                    heard += 1
                except TimeoutError:
                    pass
                finally:
                    await call.hang_up()
            pid = server.pid

            async def exited() -> bool:
                return not _alive(pid)

            await _poll(exited, 60)
            exit_s = time.monotonic() - signalled
        rows = await _sessions_in(data_dir, [session_id for session_id, _ in live])
    reasons: dict[str, int] = {}
    for row in rows.values():
        key = f"{row.status}/{row.end_reason}"
        reasons[key] = reasons.get(key, 0) + 1
    print(f"drain: {calls} live calls at SIGTERM, drain timeout {drain_s:.0f} s")
    print(f"  ended by their callers during the drain: {len(leaving)}")
    print(f"  heard the goodbye, then hung up: {heard} of {len(staying)}")
    print(f"  recorded: {', '.join(f'{n} {key}' for key, n in sorted(reasons.items()))}")
    print(f"  dropped without a goodbye: {len(staying) - heard}")
    print(f"  process exited {exit_s:.1f} s after SIGTERM")


async def _poll(check: Callable[[], Awaitable[bool]], within: float) -> None:
    for _ in range(int(within / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"still waiting after {within:.0f} s")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) still answers: ask /proc.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


async def _admin(admin_url: str, *statements: str) -> None:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def bench_outage(calls: int, turns: int, admin_url: str) -> None:
    name = f"voxline_bench_outage_{uuid.uuid4().hex[:10]}"
    await _admin(
        admin_url, f'CREATE ROLE "{name}" LOGIN', f'CREATE DATABASE "{name}" OWNER "{name}"'
    )
    url = (
        make_url(admin_url)
        .set(username=name, password=None, database=name)
        .render_as_string(hide_password=False)
    )
    line = synthesize_caller_speech("What are your opening hours?", 8000)
    try:
        with local_server({**_SERVER_ENV, "VOXLINE_DATABASE_URL": url}) as server:
            agent_id = create_agent(server, _AGENT)
            async with httpx.AsyncClient(timeout=30, base_url=server.base_url) as http:
                live = [await _greeted(server, http, agent_id) for _ in range(calls)]
                await _admin(
                    admin_url,
                    f'ALTER ROLE "{name}" NOLOGIN',
                    f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE usename = '{name}'",
                )
                outage_began = time.monotonic()
                answered = await asyncio.gather(*(_talk(call, line, turns) for _, call in live))
                ready = await http.get("/ready")
                depth = ready.json()["error"]["message"] if ready.status_code != 200 else "-"
                outage_s = time.monotonic() - outage_began
                await _admin(admin_url, f'ALTER ROLE "{name}" LOGIN')
                back = time.monotonic()

                async def ready_again() -> bool:
                    return (await http.get("/ready")).status_code == 200

                await _poll(ready_again, 60)
                catch_up_s = time.monotonic() - back
                headers = {"Authorization": f"Bearer {server.api_key}"}
                sessions = [
                    (await http.get(f"/v1/sessions/{session_id}", headers=headers)).json()
                    for session_id, _ in live
                ]
    finally:
        await _admin(
            admin_url,
            f'ALTER ROLE "{name}" LOGIN',
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
            f'DROP ROLE IF EXISTS "{name}"',
        )
    expected_items = sum(1 + 2 * n for n in answered)
    stored_items = sum(len(session["transcript"]) for session in sessions)
    stored_metrics = sum(len(session["metrics"]) for session in sessions)
    finalized = sum(1 for session in sessions if session["status"] in ("completed", "failed"))
    print(f"outage: {calls} calls, {sum(answered)} turns answered during {outage_s:.1f} s down")
    print(f"  /ready during the outage: {ready.status_code} ({depth})")
    print(f"  transcript items stored: {stored_items} of {expected_items}")
    print(f"  turn metrics stored: {stored_metrics} of {sum(answered)}")
    print(f"  sessions finalized: {finalized} of {calls}")
    print(f"  spool written {catch_up_s:.2f} s after the database came back")


async def _talk(call: SimulatedTwilioCall, line: Any, turns: int) -> int:
    """Say `line` `turns` times, each after the previous answer; hang up; turns answered."""
    answered = 0
    try:
        for _ in range(turns):
            utterance = call.say(line)
            await utterance.wait_sent()
            await call.wait_for_agent_audio(timeout=10, since=call.now())
            await call.wait_until_agent_silent(600, timeout=15)
            answered += 1
    finally:
        await call.hang_up()
    return answered


async def main(args: argparse.Namespace) -> None:
    await bench_drain(args.calls, args.drain_seconds)
    await bench_outage(args.calls, args.turns, args.postgres_admin_url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=4, help="live calls (default 4)")
    parser.add_argument("--turns", type=int, default=6, help="caller lines during the outage")
    parser.add_argument("--drain-seconds", type=float, default=3.0, help="drain timeout")
    parser.add_argument(
        "--postgres-admin-url",
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/test",
        help="a PostgreSQL superuser URL; the run creates and drops its own role and database",
    )
    asyncio.run(main(parser.parse_args()))
