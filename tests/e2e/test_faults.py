"""Deploys and crashes against a real `voxline serve` process: SIGTERM drains live calls
(the goodbye is heard, `server_shutdown` recorded), a second signal ends them at once, and
after SIGKILL a restarted process ends the orphaned calls as `server_crash`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.e2e.server import (
    RunningServer,
    connect_instructions,
    running_server,
    scripted_agent,
    signed_webhook,
    webhook_params,
)
from tests.fakes.twilio_api import FakeTwilioApi
from tests.helpers.speech import synthesize_speech
from voxline.simulator.twilio_peer import SimulatedTwilioCall
from voxline.store.database import Database
from voxline.store.models import SessionRow, TranscriptItemRow

GOODBYE = "We are closing for maintenance. Goodbye."


def _env(twilio_api: FakeTwilioApi, **settings: str) -> dict[str, str]:
    return {
        "VOXLINE_TWILIO_ACCOUNT_SID": twilio_api.account_sid,
        "VOXLINE_TWILIO_AUTH_TOKEN": twilio_api.auth_token,
        "VOXLINE_TWILIO_API_BASE_URL": twilio_api.base_url,
        **{f"VOXLINE_{name.upper()}": value for name, value in settings.items()},
    }


def _answer_call(
    server: RunningServer, twilio_api: FakeTwilioApi, agent_id: str
) -> tuple[str, str, str, str]:
    """A new live call through Twilio's voice webhook: (session, call sid, stream, relay)."""
    call = twilio_api.add_live_call()
    response = _webhook(server, twilio_api, agent_id, call.sid)
    assert response.status_code == 200, response.text
    instructions = connect_instructions(response.text)
    with server.client() as client:
        sessions = client.get("/v1/sessions", params={"agentId": agent_id}).json()["data"]
    return sessions[0]["id"], call.sid, instructions.stream_url, instructions.relay


def _webhook(
    server: RunningServer, twilio_api: FakeTwilioApi, agent_id: str, call_sid: str
) -> httpx.Response:
    params = webhook_params(call_sid, twilio_api.account_sid)
    return signed_webhook(server, twilio_api.auth_token, f"agentId={agent_id}", params)


def _create_agent(server: RunningServer, **overrides: Any) -> str:
    with server.client() as client:
        response = client.post("/v1/agents", json=scripted_agent(**overrides))
        assert response.status_code == 201, response.text
        agent_id: str = response.json()["id"]
        return agent_id


async def _stored(data_dir: Path, session_id: str) -> tuple[SessionRow, list[TranscriptItemRow]]:
    """The session and its transcript, read from the (stopped) server's SQLite file."""
    database = Database(f"sqlite+aiosqlite:///{data_dir / 'voxline.db'}")
    try:
        async with database.transaction() as db:
            row = await db.get_one(SessionRow, session_id)
            items = await db.scalars(
                select(TranscriptItemRow)
                .where(TranscriptItemRow.session_id == session_id)
                .order_by(TranscriptItemRow.seq)
            )
            return row, list(items)
    finally:
        await database.dispose()


async def _greeted_call(
    server: RunningServer, twilio_api: FakeTwilioApi, agent_id: str
) -> tuple[str, SimulatedTwilioCall]:
    session_id, call_sid, stream_url, relay = _answer_call(server, twilio_api, agent_id)
    call = SimulatedTwilioCall(stream_url, relay=relay, call_sid=call_sid)
    await call.start()
    await call.wait_for_agent_audio(timeout=5)
    await call.wait_until_agent_silent(600, timeout=10)
    return session_id, call


async def test_sigterm_lets_calls_go_on_then_says_goodbye_and_records_server_shutdown(
    tmp_path: Path, twilio_api: FakeTwilioApi
) -> None:
    env = _env(twilio_api, drain_timeout_seconds="2", drain_message=GOODBYE)
    with running_server(tmp_path, env) as server:
        agent_id = _create_agent(server)
        session_id, call = await _greeted_call(server, twilio_api, agent_id)
        other_id, other = await _greeted_call(server, twilio_api, agent_id)
        with server.client() as client:
            token = client.post(f"/v1/agents/{agent_id}/session-token").json()["url"]
        try:
            os.kill(server.pid, signal.SIGTERM)
            signalled = call.now()
            await asyncio.sleep(0.5)
            async with httpx.AsyncClient(base_url=server.base_url) as client:
                ready = await client.get("/ready")
            refused = await asyncio.to_thread(
                _webhook, server, twilio_api, agent_id, "CA" + "7" * 32
            )
            async with connect(token) as browser:
                browser_error = json.loads(await browser.recv())
                with pytest.raises(ConnectionClosed):
                    await browser.recv()
            browser_close = browser.close_code
            # The drain lets a caller finish naturally: this one hangs up on its own.
            await other.hang_up()
            goodbye_at = await call.wait_for_agent_audio(timeout=10, since=signalled + 1.0)
            await call.wait_closed(timeout=20)
        finally:
            await call.hang_up()
            await other.hang_up()
        assert await asyncio.to_thread(server.wait_exit, 30) is not None

    assert ready.status_code == 503
    assert "shutting down" in ready.json()["error"]["message"]
    assert refused.status_code == 503
    assert browser_error["type"] == "error" and browser_close == 1013
    assert goodbye_at > signalled + 1.0, "the call went on until the drain timeout"
    row, items = await _stored(tmp_path, session_id)
    assert (row.status, row.end_reason) == ("completed", "server_shutdown")
    assert (items[-1].role, items[-1].text, items[-1].heard_text) == ("agent", GOODBYE, GOODBYE)
    other_row, _ = await _stored(tmp_path, other_id)
    assert (other_row.status, other_row.end_reason) == ("completed", "caller_hangup")


async def test_a_second_signal_ends_live_calls_at_once_as_server_shutdown(
    tmp_path: Path, twilio_api: FakeTwilioApi
) -> None:
    env = _env(twilio_api, drain_timeout_seconds="600")
    with running_server(tmp_path, env) as server:
        agent_id = _create_agent(server)
        session_id, call = await _greeted_call(server, twilio_api, agent_id)
        try:
            os.kill(server.pid, signal.SIGTERM)
            await asyncio.sleep(0.5)
            os.kill(server.pid, signal.SIGTERM)
            await call.wait_closed(timeout=15)
        finally:
            await call.hang_up()
        assert await asyncio.to_thread(server.wait_exit, 30) is not None

    row, items = await _stored(tmp_path, session_id)
    assert (row.status, row.end_reason) == ("failed", "server_shutdown")
    assert items and items[0].role == "agent", "what was said is kept"


async def test_after_sigkill_a_restarted_process_ends_the_orphaned_call_as_server_crash(
    tmp_path: Path, twilio_api: FakeTwilioApi
) -> None:
    env = _env(twilio_api, process_timeout_seconds="2")
    question = synthesize_speech("What are your opening hours?", 8000)
    with running_server(tmp_path, env) as server:
        agent_id = _create_agent(server)
        session_id, call = await _greeted_call(server, twilio_api, agent_id)
        try:
            utterance = call.say(question)
            await utterance.wait_sent()
            await call.wait_for_agent_audio(timeout=5, since=call.now())
            await call.wait_until_agent_silent(600, timeout=15)
            os.kill(server.pid, signal.SIGKILL)
            await call.wait_closed(timeout=10)
        finally:
            await call.hang_up()
        server.wait_exit(10)

    with running_server(tmp_path, env) as restarted:
        session = await _wait_session(restarted, session_id, "failed")

    assert session["endReason"] == "server_crash"
    roles = [item["role"] for item in session["transcript"]]
    assert roles[:3] == ["agent", "caller", "agent"], "the stored transcript is kept"


async def _wait_session(server: RunningServer, session_id: str, status: str) -> Mapping[str, Any]:
    async with httpx.AsyncClient(
        base_url=server.base_url, headers={"Authorization": f"Bearer {server.api_key}"}
    ) as client:
        for _ in range(100):
            session: Mapping[str, Any] = (await client.get(f"/v1/sessions/{session_id}")).json()
            if session["status"] == status:
                return session
            await asyncio.sleep(0.1)
    raise AssertionError(f"session stayed {session['status']}, wanted {status}")
