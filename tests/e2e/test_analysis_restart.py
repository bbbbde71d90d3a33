"""A server process dies in the middle of an analysis; the next process takes it up and
finishes it (the analysis model is a fake OpenAI-compatible server in this test process)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server import (
    RunningServer,
    connect_instructions,
    running_server,
    scripted_agent,
    signed_webhook,
    webhook_params,
)
from tests.fakes.openai_api import FakeOpenAiApi, Reply
from tests.fakes.twilio_api import FakeTwilioApi
from tests.helpers.speech import synthesize_speech
from voxline.simulator.twilio_peer import SimulatedTwilioCall

ANSWER = {"summary": "The caller asked about opening hours.", "data": {"booked": False}}


def _env(twilio_api: FakeTwilioApi) -> dict[str, str]:
    return {
        "VOXLINE_TWILIO_ACCOUNT_SID": twilio_api.account_sid,
        "VOXLINE_TWILIO_AUTH_TOKEN": twilio_api.auth_token,
        "VOXLINE_TWILIO_API_BASE_URL": twilio_api.base_url,
        "VOXLINE_ANALYSIS_LEASE_S": "5",
    }


async def _call(server: RunningServer, twilio_api: FakeTwilioApi, agent_id: str) -> str:
    """One phone call: the greeting, a question, the answer heard, hang up; its session ID."""
    call = twilio_api.add_live_call()
    response = signed_webhook(
        server,
        twilio_api.auth_token,
        f"agentId={agent_id}",
        webhook_params(call.sid, twilio_api.account_sid),
    )
    instructions = connect_instructions(response.text)
    question = synthesize_speech("What are your opening hours?", 8000)
    async with SimulatedTwilioCall(
        instructions.stream_url, relay=instructions.relay, call_sid=call.sid
    ) as phone:
        await phone.wait_for_agent_audio(timeout=5)
        await phone.wait_until_agent_silent(600, timeout=10)
        await phone.say(question).wait_sent()
        await phone.wait_for_agent_audio(timeout=5, since=phone.now())
        await phone.wait_until_agent_silent(600, timeout=15)
        await phone.hang_up()
    with server.client() as client:
        sessions = client.get("/v1/sessions", params={"agentId": agent_id}).json()["data"]
    session_id: str = sessions[0]["id"]
    return session_id


async def _finished_analysis(server: RunningServer, session_id: str) -> dict[str, Any]:
    for _ in range(300):
        async with httpx.AsyncClient(
            base_url=server.base_url, headers={"Authorization": f"Bearer {server.api_key}"}
        ) as client:
            analysis: dict[str, Any] = (await client.get(f"/v1/sessions/{session_id}")).json()[
                "analysis"
            ]
        if analysis["status"] in ("done", "failed"):
            return analysis
        await asyncio.sleep(0.1)
    raise AssertionError(f"the analysis did not finish: {analysis}")


@pytest.mark.timeout(120)
async def test_an_analysis_cut_short_by_a_crash_is_finished_after_the_restart(
    tmp_path: Path, twilio_api: FakeTwilioApi
) -> None:
    async with FakeOpenAiApi(api_key=None) as llm:
        # The first answer never comes (the process dies waiting); the second does.
        llm.script(Reply(text=[json.dumps(ANSWER)], hold_after=0), Reply(text=[json.dumps(ANSWER)]))
        agent = scripted_agent(
            analysis={
                "dataSchema": {
                    "type": "object",
                    "properties": {"booked": {"type": "boolean"}},
                    "required": ["booked"],
                },
                "llm": {
                    "provider": "openai",
                    "model": llm.model,
                    "baseUrl": llm.base_url,
                    "firstTokenTimeoutMs": 60_000,
                },
            }
        )
        with running_server(tmp_path, _env(twilio_api)) as first:
            with first.client() as client:
                agent_id = client.post("/v1/agents", json=agent).json()["id"]
            session_id = await _call(first, twilio_api, agent_id)
            await llm.wait_for_request("/v1/chat/completions")
            os.kill(first.pid, signal.SIGKILL)

        with running_server(tmp_path, _env(twilio_api)) as second:
            analysis = await _finished_analysis(second, session_id)
    assert analysis["status"] == "done", analysis["error"]
    assert (analysis["summary"], analysis["data"]) == (ANSWER["summary"], ANSWER["data"])
    assert len(llm.completions()) == 2
