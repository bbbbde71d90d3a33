"""A phone call on scripted providers, end to end: the caller books, the call ends, and the
session's analysis says what was booked: on the session, in a signed `session.analyzed`
webhook, and in the instance's memory for the next call."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

from tests.e2e.server import (
    RunningServer,
    connect_instructions,
    scripted_agent,
    signed_webhook,
    webhook_params,
)
from tests.fakes.twilio_api import FakeTwilioApi
from tests.fakes.webhook_server import WebhookServer
from tests.helpers.speech import synthesize_speech
from voxline.simulator.twilio_peer import SimulatedTwilioCall

BOOKED = {
    "summary": "The caller booked a cleaning for Tuesday at nine.",
    "data": {"booked": True, "date": "Tuesday 9:00"},
}
NOT_BOOKED = {"summary": "Nothing was booked.", "data": {"booked": False, "date": None}}


def _webhook_secret(server: RunningServer) -> bytes:
    """The e2e workspace's webhook signing secret, read from the server's SQLite database."""
    path = Path(server.env["VOXLINE_DATA_DIR"]) / "voxline.db"
    with sqlite3.connect(path) as db:
        (secret,) = db.execute(
            "SELECT webhook_secret FROM workspaces WHERE name = 'e2e'"
        ).fetchone()
    return str(secret).encode()


def _analysed_agent(webhook_url: str) -> dict[str, Any]:
    return scripted_agent(
        webhookUrl=webhook_url,
        stt={
            "provider": "scripted",
            "transcripts": ["I'd like to book a cleaning on Tuesday"],
            "latencyMs": 50,
        },
        llm={
            "provider": "scripted",
            "firstTokenMs": 50,
            "rules": [{"match": "book", "say": "You're booked for Tuesday at nine."}],
        },
        analysis={
            "dataSchema": {
                "type": "object",
                "properties": {
                    "booked": {"type": "boolean"},
                    "date": {"type": ["string", "null"]},
                },
                "required": ["booked", "date"],
                "additionalProperties": False,
            },
            # A model that reads the call: it answers from what the agent was heard to say.
            "llm": {
                "provider": "scripted",
                "firstTokenMs": 0,
                "tokensPerSecond": 10000,
                "rules": [{"match": "booked for Tuesday at nine", "say": json.dumps(BOOKED)}],
                "defaultReply": json.dumps(NOT_BOOKED),
            },
        },
    )


async def _analysis(server: RunningServer, session_id: str) -> dict[str, Any]:
    for _ in range(200):
        with server.client() as client:
            session = client.get(f"/v1/sessions/{session_id}").json()
        if session["analysis"] and session["analysis"]["status"] in ("done", "failed"):
            analysis: dict[str, Any] = session["analysis"]
            return analysis
        await asyncio.sleep(0.1)
    raise AssertionError(f"no analysis: {session}")


async def test_a_booking_call_ends_with_its_analysis_webhook_and_memory_note(
    server: RunningServer, twilio_api: FakeTwilioApi
) -> None:
    async with WebhookServer(_webhook_secret(server)) as receiver:
        await _booking_call(server, twilio_api, receiver)


async def _booking_call(
    server: RunningServer, twilio_api: FakeTwilioApi, receiver: WebhookServer
) -> None:
    """The call, then every check on what it left: session, memory, webhooks."""
    with server.client() as client:
        agent = client.post("/v1/agents", json=_analysed_agent(receiver.url("/echo")))
        assert agent.status_code == 201, agent.text
        agent_id = agent.json()["id"]
        instance = client.post("/v1/instances", json={"agentId": agent_id, "externalRef": "ada"})
        instance_id = instance.json()["id"]
    call = twilio_api.add_live_call()
    response = signed_webhook(
        server,
        twilio_api.auth_token,
        f"agentId={agent_id}&instanceId={instance_id}",
        webhook_params(call.sid, twilio_api.account_sid),
    )
    assert response.status_code == 200, response.text
    instructions = connect_instructions(response.text)
    request = synthesize_speech("I'd like to book a cleaning on Tuesday.", 8000)

    async with SimulatedTwilioCall(
        instructions.stream_url, relay=instructions.relay, call_sid=call.sid
    ) as phone:
        await phone.wait_for_agent_audio(timeout=5)
        await phone.wait_until_agent_silent(600, timeout=10)
        await phone.say(request).wait_sent()
        await phone.wait_for_agent_audio(timeout=5, since=phone.now())
        await phone.wait_until_agent_silent(600, timeout=15)
        await phone.hang_up()

    with server.client() as client:
        sessions = client.get("/v1/sessions", params={"agentId": agent_id}).json()["data"]
    analysis = await _analysis(server, sessions[0]["id"])
    assert analysis["status"] == "done", analysis["error"]
    assert analysis["data"] == {"booked": True, "date": "Tuesday 9:00"}
    assert analysis["summary"] == BOOKED["summary"]
    with server.client() as client:
        memory = client.get(f"/v1/instances/{instance_id}").json()["memory"]
    assert [note["text"] for note in memory] == [BOOKED["summary"]]
    for _ in range(100):
        if len(receiver.received) >= 2:
            break
        await asyncio.sleep(0.05)
    assert all(delivery.signature_valid for delivery in receiver.received)
    events = {json.loads(d.body)["type"]: json.loads(d.body)["data"] for d in receiver.received}
    assert events["session.ended"]["status"] == "completed"
    assert events["session.analyzed"]["analysis"] == analysis
