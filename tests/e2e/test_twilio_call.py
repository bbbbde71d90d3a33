"""A simulated Twilio caller against a real server process, over real sockets."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
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
from tests.helpers.speech import synthesize_speech
from voxline.security.relay import issue_relay_token, verify_relay_token
from voxline.simulator.twilio_peer import SimulatedTwilioCall


def _create_agent(server: RunningServer, **overrides: Any) -> str:
    with server.client() as client:
        response = client.post("/v1/agents", json=scripted_agent(**overrides))
        assert response.status_code == 201, response.text
        agent_id: str = response.json()["id"]
        return agent_id


def _session(server: RunningServer, session_id: str) -> dict[str, Any]:
    with server.client() as client:
        response = client.get(f"/v1/sessions/{session_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def _sessions(server: RunningServer, agent_id: str) -> list[dict[str, Any]]:
    with server.client() as client:
        response = client.get("/v1/sessions", params={"agentId": agent_id})
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()["data"]
        return data


async def _wait_status(server: RunningServer, session_id: str, status: str) -> dict[str, Any]:
    for _ in range(100):
        session = _session(server, session_id)
        if session["status"] == status:
            return session
        await asyncio.sleep(0.1)
    raise AssertionError(f"session stayed {session['status']}, wanted {status}")


def _answer_call(
    server: RunningServer, twilio_api: FakeTwilioApi, agent_id: str
) -> tuple[str, str, str]:
    """Twilio's voice webhook for a new live call: (call sid, stream url, relay token)."""
    call = twilio_api.add_live_call()
    response = signed_webhook(
        server,
        twilio_api.auth_token,
        f"agentId={agent_id}",
        webhook_params(call.sid, twilio_api.account_sid),
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    instructions = connect_instructions(response.text)
    return call.sid, instructions.stream_url, instructions.relay


def test_webhook_without_a_valid_signature_is_refused_and_creates_nothing(
    server: RunningServer, twilio_api: FakeTwilioApi
) -> None:
    agent_id = _create_agent(server)
    params = webhook_params("CA" + "0" * 32, twilio_api.account_sid)
    forged = signed_webhook(server, "not-the-token", f"agentId={agent_id}", params)
    missing = signed_webhook(
        server, twilio_api.auth_token, f"agentId={agent_id}", params, signature=""
    )
    assert forged.status_code == 403
    assert missing.status_code == 403
    assert _sessions(server, agent_id) == []


def test_webhook_for_an_unknown_agent_apologizes_and_hangs_up(
    server: RunningServer, twilio_api: FakeTwilioApi
) -> None:
    params = webhook_params("CA" + "1" * 32, twilio_api.account_sid)
    response = signed_webhook(server, twilio_api.auth_token, "agentId=agent_nope", params)
    assert response.status_code == 200
    assert "<Say>" in response.text and "<Hangup />" in response.text


async def test_a_call_is_greeted_answered_and_recorded(
    server: RunningServer, twilio_api: FakeTwilioApi
) -> None:
    agent_id = _create_agent(server)
    call_sid, stream_url, relay = _answer_call(server, twilio_api, agent_id)
    session_id = _sessions(server, agent_id)[0]["id"]
    question = synthesize_speech("What are your opening hours?", 8000)

    async with SimulatedTwilioCall(stream_url, relay=relay, call_sid=call_sid) as call:
        greeting = await call.wait_for_agent_audio(timeout=5)
        await call.wait_until_agent_silent(600, timeout=10)
        utterance = call.say(question)
        await utterance.wait_sent()
        await call.wait_for_agent_audio(timeout=5, since=call.now())
        await call.wait_until_agent_silent(600, timeout=15)
        await call.hang_up()

    assert greeting < 1.0
    assert [m.name for m in call.marks if not m.cleared]
    turns = call.turns()
    assert turns and turns[-1].latency is not None
    session = await _wait_status(server, session_id, "completed")
    assert session["endReason"] == "caller_hangup"
    assert session["callSid"] == call_sid
    roles = [item["role"] for item in session["transcript"]]
    assert roles[:3] == ["agent", "caller", "agent"]
    assert session["transcript"][1]["text"] == "what are your hours"
    assert "nine to five" in session["transcript"][2]["text"]
    assert session["metrics"] and session["metrics"][0]["turnLatencyMs"] is not None
    assert session["firstResponseMs"] is not None


async def test_talking_over_the_agent_clears_its_audio(
    server: RunningServer, twilio_api: FakeTwilioApi
) -> None:
    agent_id = _create_agent(
        server, firstMessage="Welcome to the clinic. " * 6, turnTaking={"vad": "energy"}
    )
    call_sid, stream_url, relay = _answer_call(server, twilio_api, agent_id)
    session_id = _sessions(server, agent_id)[0]["id"]
    interruption = synthesize_speech("Sorry, what are your hours?", 8000)

    async with SimulatedTwilioCall(stream_url, relay=relay, call_sid=call_sid) as call:
        await call.wait_for_agent_audio(timeout=5)
        await asyncio.sleep(1.5)
        utterance = call.say(interruption)
        await utterance.wait_sent()
        await call.wait_until_agent_silent(600, timeout=15)
        await call.hang_up()

    assert call.clears, "barge-in must send clear"
    session = await _wait_status(server, session_id, "completed")
    greeting = session["transcript"][0]
    assert greeting["interrupted"] is True
    assert len(greeting["heardText"]) < len(greeting["text"])


async def test_end_call_hangs_up_through_twilio_after_the_goodbye(
    server: RunningServer, twilio_api: FakeTwilioApi
) -> None:
    agent_id = _create_agent(
        server,
        stt={"provider": "scripted", "transcripts": ["bye now"], "latencyMs": 50},
    )
    call_sid, stream_url, relay = _answer_call(server, twilio_api, agent_id)
    session_id = _sessions(server, agent_id)[0]["id"]
    bye = synthesize_speech("Okay, bye now.", 8000)

    async with SimulatedTwilioCall(stream_url, relay=relay, call_sid=call_sid) as call:
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_until_agent_silent(600, timeout=10)
        await call.say(bye).wait_sent()
        await call.wait_closed(timeout=15)

    session = await _wait_status(server, session_id, "completed")
    assert session["endReason"] == "agent_hangup"
    hangups = [
        r for r in twilio_api.requests if call_sid in r.path and r.values("Status") == ["completed"]
    ]
    assert hangups, "the hang-up must go through Twilio's REST API"
    assert twilio_api.calls[call_sid].status == "completed"


async def test_forged_expired_and_replayed_relay_tokens_are_refused(
    server: RunningServer, twilio_api: FakeTwilioApi
) -> None:
    agent_id = _create_agent(server)
    call_sid, stream_url, relay = _answer_call(server, twilio_api, agent_id)
    payload, signature = relay.split(".")
    forged = payload + "." + ("A" if signature[0] != "A" else "B") + signature[1:]

    async with SimulatedTwilioCall(stream_url, relay=forged, call_sid=call_sid) as call:
        await call.wait_closed(timeout=5)
    assert call.close_code == 1008

    secret = (Path(server.env["VOXLINE_DATA_DIR"]) / "server-secret").read_bytes()
    context = verify_relay_token(secret, relay)
    expired, _ = issue_relay_token(
        secret, context, timedelta(seconds=60), now=datetime.now(UTC) - timedelta(minutes=5)
    )
    async with SimulatedTwilioCall(stream_url, relay=expired, call_sid=call_sid) as call:
        await call.wait_closed(timeout=5)
    assert call.close_code == 1008

    async with SimulatedTwilioCall(stream_url, relay=relay, call_sid=call_sid) as first:
        await first.wait_for_agent_audio(timeout=5)
        async with SimulatedTwilioCall(stream_url, relay=relay, call_sid=call_sid) as replay:
            await replay.wait_closed(timeout=5)
        assert replay.close_code == 1008
        await first.hang_up()
