"""The browser session WebSocket against a real server process, over real sockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.e2e.server import RunningServer, running_server, scripted_agent
from tests.helpers.speech import synthesize_speech
from tests.transports.browser_peer import BrowserPeer
from voxline.security.session_token import issue_session_token, verify_session_token

ALLOWED_ORIGIN = "https://app.example.com"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    env = {"VOXLINE_ALLOWED_ORIGINS": json.dumps([ALLOWED_ORIGIN])}
    with running_server(tmp_path_factory.mktemp("voxline-browser"), env) as running:
        yield running


def _create_agent(server: RunningServer, **overrides: Any) -> str:
    with server.client() as client:
        response = client.post("/v1/agents", json=scripted_agent(**overrides))
        assert response.status_code == 201, response.text
        agent_id: str = response.json()["id"]
        return agent_id


def _token(server: RunningServer, agent_id: str, **body: Any) -> dict[str, Any]:
    with server.client() as client:
        response = client.post(f"/v1/agents/{agent_id}/session-token", json=body)
        assert response.status_code == 200, response.text
        token: dict[str, Any] = response.json()
        return token


def _url(server: RunningServer, agent_id: str, token: str) -> str:
    ws_base = server.base_url.replace("http://", "ws://")
    return f"{ws_base}/v1/agents/{agent_id}/session?token={token}"


def _session(server: RunningServer, session_id: str) -> dict[str, Any]:
    with server.client() as client:
        response = client.get(f"/v1/sessions/{session_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


async def _wait_finished(server: RunningServer, session_id: str) -> dict[str, Any]:
    for _ in range(100):
        session = _session(server, session_id)
        if session["status"] in ("completed", "failed"):
            return session
        await asyncio.sleep(0.1)
    raise AssertionError(f"session {session_id} is still {session['status']}")


async def _greeted(peer: BrowserPeer) -> None:
    """Wait until the greeting has been said and heard."""
    await peer.wait_for_agent("thanks for calling.")
    await peer.wait_until_quiet()


async def test_session_starts_and_greets_with_audio_and_marks(server: RunningServer) -> None:
    agent_id = _create_agent(server)
    token = _token(server, agent_id)
    async with BrowserPeer(token["url"]) as peer:
        started = await peer.start()
        greeting = await peer.wait_for_agent("Hello, thanks for calling.")
        await peer.wait_for("mark")

    assert started["agentId"] == agent_id
    assert started["sessionId"].startswith("sess_")
    assert started["sampleRate"] == 16000
    assert peer.of_type("mark")[0]["name"].startswith(greeting)
    assert peer.binary_frames > 0


async def test_caller_speech_is_transcribed_and_answered(server: RunningServer) -> None:
    agent_id = _create_agent(server)
    question = synthesize_speech("What are your opening hours?", 16000)
    async with BrowserPeer(_token(server, agent_id)["url"]) as peer:
        await peer.start()
        await _greeted(peer)
        peer.say(question)
        final = await peer.wait_for("transcript.final", timeout=15)
        answer = await peer.wait_for_agent("nine to five", timeout=15)
        await peer.wait_for("mark", lambda event: event["name"].startswith(answer))
        metrics = await peer.wait_for("turn.metrics", timeout=15)

    assert final["text"] == "what are your hours"
    assert final["source"] == "speech"
    assert metrics["turnLatencyMs"] is not None


async def test_typed_text_is_answered_like_speech(server: RunningServer) -> None:
    agent_id = _create_agent(server)
    async with BrowserPeer(_token(server, agent_id)["url"]) as peer:
        await peer.start()
        await _greeted(peer)
        await peer.send_json({"type": "text", "text": "What are your hours?"})
        final = await peer.wait_for("transcript.final")
        await peer.wait_for_agent("nine to five")

    assert final["seq"] > 1 and final["atMs"] > 0
    del final["seq"], final["atMs"]
    assert final == {"type": "transcript.final", "text": "What are your hours?", "source": "text"}


async def test_interrupt_stops_the_agent_and_clears_its_audio(server: RunningServer) -> None:
    agent_id = _create_agent(server, firstMessage="Welcome to the clinic. " * 8)
    async with BrowserPeer(_token(server, agent_id)["url"]) as peer:
        await peer.start()
        await peer.wait_for("mark")
        await asyncio.sleep(0.5)
        await peer.send_json({"type": "interrupt"})
        interrupted = await peer.wait_for("agent.interrupted")
        await peer.wait_for("clear")

    assert len(interrupted["heardText"]) < len(interrupted["text"])


async def test_end_finishes_the_session_and_stores_it_as_web(server: RunningServer) -> None:
    agent_id = _create_agent(server)
    async with BrowserPeer(_token(server, agent_id)["url"]) as peer:
        started = await peer.start()
        await _greeted(peer)
        await peer.send_json({"type": "text", "text": "What are your hours?"})
        await peer.wait_for_agent("nine to five")
        await peer.send_json({"type": "end"})
        ended = await peer.wait_for("session.ended")
        code = await peer.wait_closed()

    assert ended["reason"] == "caller_hangup"
    assert code == 1000
    session = await _wait_finished(server, started["sessionId"])
    assert session["channel"] == "web"
    assert session["status"] == "completed"
    transcript = [(item["role"], item["text"]) for item in session["transcript"]]
    assert ("caller", "What are your hours?") in transcript
    assert any(role == "agent" and "nine to five" in text for role, text in transcript)


async def test_disconnecting_finalizes_the_session(server: RunningServer) -> None:
    agent_id = _create_agent(server)
    async with BrowserPeer(_token(server, agent_id)["url"]) as peer:
        started = await peer.start()
        await peer.wait_for_agent("thanks for calling")

    session = await _wait_finished(server, started["sessionId"])
    assert session["status"] == "completed"
    assert session["endReason"] == "caller_hangup"
    assert session["transcript"][0]["role"] == "agent"


async def test_session_at_48_khz_sends_and_receives_48_khz_audio(server: RunningServer) -> None:
    agent_id = _create_agent(server)
    question = synthesize_speech("What are your opening hours?", 48000)
    async with BrowserPeer(_token(server, agent_id)["url"], sample_rate=48000) as peer:
        started = await peer.start()
        await _greeted(peer)
        greeting_samples = peer.audio_samples
        peer.say(question)
        await peer.wait_for_agent("nine to five", timeout=15)

    assert started["sampleRate"] == 48000
    # Scripted TTS speaks 55 ms a character: "Hello, thanks for calling." lasts about 1.4 s.
    assert greeting_samples > 48000


async def test_token_and_start_variables_fill_placeholders(server: RunningServer) -> None:
    agent_id = _create_agent(server, firstMessage="Hello {{name}}, welcome to {{place}}.")
    token = _token(server, agent_id, variables={"name": "Ada"})
    async with BrowserPeer(token["url"]) as peer:
        await peer.start(variables={"name": "Mallory", "place": "the clinic"})
        greeting = await peer.wait_for_agent("welcome")
    assert peer.agent_text()[greeting] == "Hello Ada, welcome to the clinic."


async def test_invalid_token_is_refused_with_an_error_and_policy_close(
    server: RunningServer,
) -> None:
    agent_id = _create_agent(server)
    async with BrowserPeer(_url(server, agent_id, "not-a-token")) as peer:
        error = await peer.wait_for("error")
        code = await peer.wait_closed()
    assert "malformed" in error["message"]
    assert code == 1008


async def test_replayed_token_is_refused(server: RunningServer) -> None:
    agent_id = _create_agent(server)
    token = _token(server, agent_id)
    async with BrowserPeer(token["url"]) as first:
        await first.start()
    async with BrowserPeer(token["url"]) as replay:
        error = await replay.wait_for("error")
        code = await replay.wait_closed()
    assert "already used" in error["message"]
    assert code == 1008


async def test_token_for_another_agent_is_refused_and_stays_usable(
    server: RunningServer,
) -> None:
    agent_id = _create_agent(server)
    other_id = _create_agent(server)
    token = _token(server, agent_id)["token"]
    async with BrowserPeer(_url(server, other_id, token)) as wrong:
        error = await wrong.wait_for("error")
        assert await wrong.wait_closed() == 1008
    async with BrowserPeer(_url(server, agent_id, token)) as right:
        await right.start()
    assert "another agent" in error["message"]


async def test_expired_token_is_refused(server: RunningServer) -> None:
    agent_id = _create_agent(server)
    token = _token(server, agent_id)["token"]
    secret = (Path(server.env["VOXLINE_DATA_DIR"]) / "server-secret").read_bytes()
    grant = verify_session_token(secret, token)
    expired, _ = issue_session_token(
        secret, grant, timedelta(seconds=60), now=datetime.now(UTC) - timedelta(minutes=5)
    )
    async with BrowserPeer(_url(server, agent_id, expired)) as peer:
        error = await peer.wait_for("error")
        assert await peer.wait_closed() == 1008
    assert "expired" in error["message"]


async def test_foreign_origin_is_refused_before_the_socket_is_accepted(
    server: RunningServer,
) -> None:
    agent_id = _create_agent(server)
    token = _token(server, agent_id)
    with pytest.raises(InvalidStatus) as refused:
        await connect(token["url"], additional_headers={"Origin": "https://evil.example"})
    assert refused.value.response.status_code == 403
    # The refused attempt did not use the token up.
    async with BrowserPeer(token["url"], origin=server.base_url) as peer:
        await peer.start()


async def test_configured_origin_is_accepted(server: RunningServer) -> None:
    agent_id = _create_agent(server)
    async with BrowserPeer(_token(server, agent_id)["url"], origin=ALLOWED_ORIGIN) as peer:
        started = await peer.start()
    assert started["agentId"] == agent_id


async def test_bad_messages_get_error_events_and_the_session_goes_on(
    server: RunningServer,
) -> None:
    agent_id = _create_agent(server)
    async with BrowserPeer(_token(server, agent_id)["url"]) as peer:
        await peer.send_raw(b"\x00\x01")
        await peer.send_json({"type": "text", "text": "too early"})
        await peer.send_json({"type": "start", "sampleRate": 44100})
        await peer.wait_for("error", lambda event: "sampleRate" in event["message"])
        await peer.start()
        await _greeted(peer)
        await peer.send_raw("{not json")
        await peer.send_json({"type": "dance"})
        await peer.send_raw(b"\x00\x01\x02")
        await peer.send_raw(b"\x00" * (200 * 1024))
        await peer.send_json({"type": "audio", "data": "***"})
        await peer.send_json({"type": "start"})
        await peer.send_json({"type": "text", "text": "What are your hours?"})
        await peer.wait_for_agent("nine to five")

    errors = [event["message"] for event in peer.of_type("error")]
    assert errors[:2] == ["send a start message first", "send a start message first"]
    assert "sampleRate" in errors[2]
    assert "JSON" in errors[3]
    assert "unknown message type 'dance'" in errors[4]
    assert "even number of bytes" in errors[5]
    assert "too large" in errors[6]
    assert "base64" in errors[7]
    assert "already started" in errors[8]


async def test_start_naming_an_unknown_instance_gets_an_error_and_may_be_retried(
    server: RunningServer,
) -> None:
    agent_id = _create_agent(server)
    async with BrowserPeer(_token(server, agent_id)["url"]) as peer:
        await peer.send_json({"type": "start", "instanceId": "inst_nope"})
        error = await peer.wait_for("error")
        started = await peer.start()
    assert "inst_nope" in error["message"]
    assert started["sessionId"].startswith("sess_")


async def test_a_backchannel_over_the_agent_is_recorded_and_the_agent_speaks_on(
    server: RunningServer,
) -> None:
    agent_id = _create_agent(
        server,
        firstMessage="Welcome to the clinic. " * 8,
        stt={"provider": "scripted", "transcripts": ["Yeah."], "latencyMs": 50},
    )
    yeah = synthesize_speech("Yeah.", 16000)
    async with BrowserPeer(_token(server, agent_id)["url"]) as peer:
        await peer.start()
        await peer.wait_for("mark")
        await asyncio.sleep(0.5)
        peer.say(yeah)
        backchannel = await peer.wait_for("transcript.backchannel", timeout=10)
        await asyncio.sleep(0.5)
    assert backchannel["text"] == "Yeah."
    assert peer.of_type("clear") == []
    assert peer.of_type("agent.interrupted") == []


async def test_words_over_the_agent_stop_it_on_the_browser_too(server: RunningServer) -> None:
    agent_id = _create_agent(
        server,
        firstMessage="Welcome to the clinic. " * 8,
        stt={"provider": "scripted", "transcripts": ["Sorry, can I ask something?"]},
    )
    words = synthesize_speech("Sorry, can I ask something?", 16000)
    async with BrowserPeer(_token(server, agent_id)["url"]) as peer:
        await peer.start()
        await peer.wait_for("mark")
        await asyncio.sleep(0.5)
        peer.say(words)
        await peer.wait_for("clear", timeout=5)
        final = await peer.wait_for("transcript.final", timeout=10)
    assert final["text"] == "Sorry, can I ask something?"
