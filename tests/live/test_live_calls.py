"""Live events (SSE), call control and /metrics of one server process, without Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.e2e.server import RunningServer, running_server, scripted_agent
from tests.helpers.speech import synthesize_speech
from tests.helpers.sse import SseStream
from tests.transports.browser_peer import BrowserPeer
from voxline.simulator.metrics_scrape import sample


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("voxline-live"), {}) as running:
        yield running


def _agent(server: RunningServer) -> str:
    with server.client() as client:
        response = client.post("/v1/agents", json=scripted_agent())
        assert response.status_code == 201, response.text
        agent_id: str = response.json()["id"]
    return agent_id


def _browser_url(server: RunningServer, agent_id: str) -> str:
    with server.client() as client:
        response = client.post(f"/v1/agents/{agent_id}/session-token", json={})
        assert response.status_code == 200, response.text
        url: str = response.json()["url"]
    return url


def _post(server: RunningServer, path: str, body: dict[str, str] | None = None) -> tuple[int, dict]:
    with server.client() as client:
        response = client.post(path, json=body)
        return response.status_code, response.json()


def _metrics(server: RunningServer) -> str:
    with server.client() as client:
        response = client.get("/metrics")
        assert response.status_code == 200
        return response.text


async def test_a_live_call_is_streamed_replayed_and_hung_up(server: RunningServer) -> None:
    agent_id = _agent(server)
    async with BrowserPeer(_browser_url(server, agent_id)) as peer:
        session_id = (await peer.start())["sessionId"]
        await peer.wait_for_agent("thanks for calling.")
        path = f"/v1/sessions/{session_id}/events"
        async with SseStream(server.base_url, path, server.api_key) as stream:
            assert stream.status_code == 200
            started = await stream.until("session.started")
            await stream.until("agent.text")
            await peer.send_json({"type": "text", "text": "What are your hours?"})
            final = await stream.until("transcript.final")
            await stream.until("agent.text")
            status, body = _post(server, f"/v1/sessions/{session_id}/hangup")
            assert status == 200, body
            ended = await stream.until("session.ended")
            assert await stream.next() is None
        await peer.wait_closed()

    assert started.data["channel"] == "web" and started.data["agentId"] == agent_id
    assert final.data["text"] == "What are your hours?"
    assert ended.data["reason"] == "operator_hangup"
    # A reconnecting client resumes after the last event it saw, and nothing is lost.
    seen = stream.messages
    async with SseStream(
        server.base_url, path, server.api_key, {"Last-Event-ID": str(seen[2].id)}
    ) as resumed:
        rest = await resumed.rest()
    assert [m.id for m in rest] == [m.id for m in seen[3:]]
    assert rest[-1].event == "session.ended"


async def test_the_workspace_stream_shows_session_starts_and_ends(server: RunningServer) -> None:
    agent_id = _agent(server)
    async with SseStream(server.base_url, "/v1/events", server.api_key) as stream:
        async with BrowserPeer(_browser_url(server, agent_id)) as peer:
            session_id = (await peer.start())["sessionId"]
            await peer.wait_for_agent("thanks for calling.")
            await peer.send_json({"type": "end"})
            await peer.wait_closed()
        while (ended := await stream.until("session.ended")).data["sessionId"] != session_id:
            pass

    # The stream replays the recent history too: this session's start is in it.
    starts = [m for m in stream.messages if m.event == "session.started"]
    assert session_id in [m.data["sessionId"] for m in starts]
    assert ended.data["reason"] == "caller_hangup"


async def test_say_makes_the_agent_speak_a_line_now(server: RunningServer) -> None:
    agent_id = _agent(server)
    async with BrowserPeer(_browser_url(server, agent_id)) as peer:
        session_id = (await peer.start())["sessionId"]
        await peer.wait_for_agent("thanks for calling.")
        await peer.wait_until_quiet()
        line = {"text": "A supervisor has joined the call."}
        status, body = _post(server, f"/v1/sessions/{session_id}/say", line)
        assert status == 200, body
        await peer.wait_for_agent("A supervisor has joined the call.")
        transfer = _post(server, f"/v1/sessions/{session_id}/transfer", {"to": "+14155550100"})
        await peer.send_json({"type": "end"})

    assert transfer[0] == 409
    assert "no phone line" in transfer[1]["error"]["message"]


async def test_control_answers_409_for_a_session_that_is_over(server: RunningServer) -> None:
    agent_id = _agent(server)
    async with BrowserPeer(_browser_url(server, agent_id)) as peer:
        session_id = (await peer.start())["sessionId"]
        await peer.send_json({"type": "end"})
        await peer.wait_closed()
    for _ in range(50):
        status, body = _post(server, f"/v1/sessions/{session_id}/hangup")
        if "is over" in body["error"]["message"]:
            break
        await asyncio.sleep(0.1)

    assert status == 409
    assert body["error"]["type"] == "conflict_error"
    # Its events are still served, ending with session.ended.
    path = f"/v1/sessions/{session_id}/events"
    async with SseStream(server.base_url, path, server.api_key) as stream:
        messages = await stream.rest()
    assert messages[-1].event == "session.ended"


async def test_events_of_another_workspace_are_not_found(server: RunningServer) -> None:
    async with SseStream(server.base_url, "/v1/sessions/sess_nope/events", server.api_key) as s:
        assert s.status_code == 404
    async with SseStream(
        server.base_url, "/v1/events", server.api_key, {"Last-Event-ID": "garbage"}
    ) as s:
        assert s.status_code == 422


async def test_metrics_count_calls_by_channel_and_end_reason(server: RunningServer) -> None:
    before = sample(_metrics(server), "voxline_calls_ended_total", reason="caller_hangup")
    agent_id = _agent(server)
    async with BrowserPeer(_browser_url(server, agent_id)) as peer:
        await peer.start()
        await peer.wait_for_agent("thanks for calling.")
        await peer.wait_until_quiet()
        peer.say(synthesize_speech("What are your opening hours?", 16000))
        await peer.wait_for("turn.metrics", timeout=15)
        await peer.send_json({"type": "end"})
        await peer.wait_closed()
    await asyncio.sleep(0.3)
    text = _metrics(server)

    assert sample(text, "voxline_calls_ended_total", reason="caller_hangup") == before + 1
    assert sample(text, "voxline_live_calls", channel="web", direction="inbound") == 0
    assert sample(text, "voxline_turn_latency_seconds_count") >= 1
    assert sample(text, "voxline_turn_part_seconds_count", part="llm_first_token") >= 1
    assert sample(text, "voxline_event_loop_lag_seconds_count") > 0
