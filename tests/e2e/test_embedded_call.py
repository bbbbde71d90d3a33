"""A phone call on the embedded offline models (Whisper, llama.cpp, Piper, Silero), end to end."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import RunningServer, connect_instructions, running_server
from tests.helpers.speech import synthesize_speech
from voxline.simulator.twilio_peer import SimulatedTwilioCall

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir: Path = tmp_path_factory.mktemp("voxline-embedded")
    env = {
        "VOXLINE_SEED_DEMO_AGENT": "true",
        "VOXLINE_PRELOAD_MODELS": "true",
        "VOXLINE_TWILIO_VALIDATE_SIGNATURES": "false",
    }
    with running_server(data_dir, env) as server:
        yield server


def _demo_agent_id(server: RunningServer) -> str:
    demo_key = (Path(server.env["VOXLINE_DATA_DIR"]) / "demo-api-key").read_text().strip()
    server.api_key = demo_key
    with server.client() as client:
        agents = client.get("/v1/agents").json()["data"]
    assert [agent["name"] for agent in agents] == ["Demo receptionist"]
    agent_id: str = agents[0]["id"]
    return agent_id


async def test_the_demo_agent_transcribes_and_answers_a_caller_offline(
    embedded_server: RunningServer,
) -> None:
    agent_id = _demo_agent_id(embedded_server)
    with embedded_server.client() as client:
        created = client.post(
            "/v1/sessions/twilio",
            json={"agentId": agent_id, "from": "+14155550123", "to": "+18005550100"},
        )
    assert created.status_code == 200, created.text
    session_id = created.json()["sessionId"]
    instructions = connect_instructions(created.json()["twiml"])
    question = synthesize_speech("Hello, what time do you open on Monday?", 8000)

    async with SimulatedTwilioCall(instructions.stream_url, relay=instructions.relay) as call:
        await call.wait_for_agent_audio(timeout=10)
        await call.wait_until_agent_silent(800, timeout=20)
        await call.say(question).wait_sent()
        await call.wait_for_agent_audio(timeout=15, since=call.now())
        await call.wait_until_agent_silent(800, timeout=30)
        await call.hang_up()

    session = await _finished(embedded_server, session_id)
    caller = [item["text"].lower() for item in session["transcript"] if item["role"] == "caller"]
    agent = [item["text"] for item in session["transcript"] if item["role"] == "agent"]
    assert caller and "monday" in caller[0], session["transcript"]
    assert len(agent) >= 2 and agent[1].strip(), session["transcript"]
    assert session["metrics"][0]["turnLatencyMs"] > 0


async def _finished(server: RunningServer, session_id: str) -> dict[str, Any]:
    for _ in range(100):
        with server.client() as client:
            session: dict[str, Any] = client.get(f"/v1/sessions/{session_id}").json()
        if session["status"] in ("completed", "failed"):
            assert session["status"] == "completed", session
            return session
        await asyncio.sleep(0.1)
    raise AssertionError("the session did not finish")
