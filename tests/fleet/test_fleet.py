"""Two `voxline serve` processes sharing PostgreSQL and Redis behind a real haproxy act as one.

Needs PostgreSQL and Redis on 127.0.0.1 (scripts/services.sh) and Debian's haproxy
(scripts/bootstrap.sh installs it): without them this test fails, it never skips.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis
from twilio.request_validator import RequestValidator

from tests.conftest import _PostgresDatabases
from tests.e2e.server import (
    RunningServer,
    connect_instructions,
    running_server,
    scripted_agent,
    webhook_params,
)
from tests.fakes.twilio_api import FakeTwilioApi, running_fake_twilio_api
from tests.helpers.sse import SseStream
from tests.transports.browser_peer import BrowserPeer
from voxline.simulator.metrics_scrape import sample
from voxline.simulator.proxy import running_haproxy
from voxline.simulator.server_process import free_port
from voxline.simulator.twilio_peer import SimulatedTwilioCall

REDIS_URL = "redis://127.0.0.1:6379/0"
# A long greeting keeps each call live while the test looks at it from the other process.
GREETING = "Hello, thanks for calling the clinic. " * 12


@dataclass
class Fleet:
    proxy_url: str
    servers: list[RunningServer]
    twilio: FakeTwilioApi
    api_key: str

    def client(self, base_url: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=base_url or self.proxy_url,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=10.0,
        )


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory, _postgres_databases: _PostgresDatabases
) -> Iterator[Fleet]:
    prefix = f"voxline-test-{uuid.uuid4().hex[:12]}"
    database_url = _postgres_databases.create()
    work = tmp_path_factory.mktemp("fleet")
    with ExitStack() as stack:
        twilio = stack.enter_context(running_fake_twilio_api())
        proxy_port = free_port()
        proxy_url = f"http://127.0.0.1:{proxy_port}"
        env = {
            "VOXLINE_DATABASE_URL": database_url,
            "VOXLINE_REDIS_URL": REDIS_URL,
            "VOXLINE_REDIS_PREFIX": prefix,
            "VOXLINE_SECRET_KEY": secrets.token_urlsafe(32),
            "VOXLINE_PUBLIC_BASE_URL": proxy_url,
            "VOXLINE_TWILIO_ACCOUNT_SID": twilio.account_sid,
            "VOXLINE_TWILIO_AUTH_TOKEN": twilio.auth_token,
            "VOXLINE_TWILIO_API_BASE_URL": twilio.base_url,
        }
        # One after the other: the first migrates the shared database.
        servers = []
        for name in ("a", "b"):
            (work / name).mkdir()
            servers.append(stack.enter_context(running_server(work / name, env)))
        backends = [server.base_url.removeprefix("http://") for server in servers]
        stack.enter_context(running_haproxy(backends, work, port=proxy_port))
        try:
            yield Fleet(proxy_url, servers, twilio, servers[0].api_key)
        finally:
            _forget_redis_keys(prefix)


def _forget_redis_keys(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def _agent(fleet: Fleet, **overrides: Any) -> str:
    with fleet.client() as client:
        response = client.post("/v1/agents", json=scripted_agent(**overrides))
        assert response.status_code == 201, response.text
        agent_id: str = response.json()["id"]
    return agent_id


def _answer(fleet: Fleet, agent_id: str) -> tuple[str, str, str, str]:
    """Twilio's webhook through the proxy: (call sid, stream URL, relay, session ID)."""
    call = fleet.twilio.add_live_call()
    url = f"{fleet.proxy_url}/v1/sessions/twilio?agentId={agent_id}"
    params = webhook_params(call.sid, fleet.twilio.account_sid)
    signature = RequestValidator(fleet.twilio.auth_token).compute_signature(url, params)
    response = httpx.post(url, data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200, response.text
    instructions = connect_instructions(response.text)
    assert instructions.stream_url.startswith(fleet.proxy_url.replace("http", "ws"))
    with fleet.client() as client:
        sessions = client.get("/v1/sessions", params={"agentId": agent_id}).json()["data"]
    session_id = next(s["id"] for s in sessions if s["callSid"] == call.sid)
    return call.sid, instructions.stream_url, instructions.relay, session_id


def _metrics(server: RunningServer) -> str:
    return httpx.get(f"{server.base_url}/metrics", timeout=10.0).text


def _live_calls(server: RunningServer) -> float:
    return sample(_metrics(server), "voxline_live_calls")


async def _owner(fleet: Fleet, expected: list[float]) -> None:
    """Wait until the processes' live-call gauges read `expected`."""
    for _ in range(100):
        if [_live_calls(server) for server in fleet.servers] == expected:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"live calls {[_live_calls(s) for s in fleet.servers]} != {expected}")


async def _live_total(fleet: Fleet, total: int) -> list[float]:
    """Wait until the processes run `total` calls in all; each one's count."""
    for _ in range(100):
        live = [_live_calls(server) for server in fleet.servers]
        if sum(live) == total:
            return live
        await asyncio.sleep(0.1)
    raise AssertionError(f"live calls {live}, wanted {total} in all")


@pytest.fixture
async def calls(fleet: Fleet) -> AsyncIterator[list[SimulatedTwilioCall]]:
    opened: list[SimulatedTwilioCall] = []
    yield opened
    for call in opened:
        await call.hang_up()


async def test_two_processes_behind_a_proxy_act_as_one(
    fleet: Fleet, calls: list[SimulatedTwilioCall]
) -> None:
    agent_id = _agent(fleet, firstMessage=GREETING)
    a, b = fleet.servers
    started_before = [
        sample(_metrics(s), "voxline_calls_started_total", channel="phone") for s in fleet.servers
    ]

    # Two Twilio calls through the proxy: one lands on each process (fewest connections).
    placed: dict[int, tuple[SimulatedTwilioCall, str]] = {}
    for count in (1, 2):
        call_sid, stream_url, relay, session_id = _answer(fleet, agent_id)
        call = SimulatedTwilioCall(stream_url, relay=relay, call_sid=call_sid)
        await call.__aenter__()
        calls.append(call)
        await call.wait_for_agent_audio(timeout=10)
        live = await _live_total(fleet, count)
        owner = next((i for i, n in enumerate(live) if n == 1 and i not in placed), None)
        assert owner is not None, f"both calls went to one process: {live}"
        placed[owner] = (call, session_id)
    on_a_call, on_a = placed[0]
    on_b_call, on_b = placed[1]

    # The workspace's stream, through the proxy (SSE unbuffered), sees calls on either process
    # (opened once the calls are placed: its connection must not sway where they land).
    dashboard = SseStream(fleet.proxy_url, "/v1/events", fleet.api_key)
    await dashboard.__aenter__()

    # A pending session (its stream never connected) is owned by no process.
    _, _, _, pending = _answer(fleet, agent_id)
    with fleet.client(a.base_url) as client:
        refused = client.post(f"/v1/sessions/{pending}/hangup")
    assert refused.status_code == 409, refused.text
    assert "not live on any server process" in refused.json()["error"]["message"]

    # SSE from A shows the call living on B; a hang-up sent to A ends it on B.
    path = f"/v1/sessions/{on_b}/events"
    async with SseStream(a.base_url, path, fleet.api_key) as stream:
        started = await stream.until("session.started")
        await stream.until("agent.text")
        with fleet.client(a.base_url) as client:
            said = client.post(f"/v1/sessions/{on_b}/say", json={"text": "One moment please."})
            assert said.status_code == 200, said.text
            while not (spoken := await stream.until("agent.text")).data["text"].startswith("One"):
                pass
            hung_up = client.post(f"/v1/sessions/{on_b}/hangup")
            assert hung_up.status_code == 200, hung_up.text
        ended = await stream.until("session.ended")
    await on_b_call.wait_closed(timeout=10)
    assert started.data["channel"] == "phone"
    assert spoken.data["text"] == "One moment please."
    assert ended.data["reason"] == "operator_hangup"
    await _owner(fleet, [1.0, 0.0])

    # A transfer sent to B hands the call living on A over, through Twilio's REST API.
    with fleet.client(b.base_url) as client:
        moved = client.post(f"/v1/sessions/{on_a}/transfer", json={"to": "+14155550100"})
    assert moved.status_code == 200, moved.text
    redirects = [
        r.values("Twiml")[0]
        for r in fleet.twilio.requests
        if on_a_call.call_sid in r.path and r.values("Twiml")
    ]
    assert redirects and "+14155550100" in redirects[-1]
    await _owner(fleet, [0.0, 0.0])
    with fleet.client() as client:
        assert client.get(f"/v1/sessions/{on_a}").json()["endReason"] == "transferred"

    # A browser session works through the proxy (WebSocket upgrade and all).
    with fleet.client() as client:
        token = client.post(f"/v1/agents/{agent_id}/session-token", json={}).json()
    assert token["url"].startswith(fleet.proxy_url.replace("http", "ws"))
    async with BrowserPeer(token["url"]) as peer:
        browser_session = (await peer.start())["sessionId"]
        await peer.wait_for_agent("Hello, thanks for calling")
        await peer.send_json({"type": "end"})
        await peer.wait_closed()

    # The processes' metrics add up to the calls placed.
    texts = [_metrics(server) for server in fleet.servers]
    phone = [sample(t, "voxline_calls_started_total", channel="phone") for t in texts]
    web = [sample(t, "voxline_calls_started_total", channel="web") for t in texts]
    assert sum(phone) - sum(started_before) == 2
    assert phone[0] - started_before[0] == 1 and phone[1] - started_before[1] == 1
    assert sum(web) >= 1
    assert sum(sample(t, "voxline_calls_ended_total", reason="operator_hangup") for t in texts) == 1
    with fleet.client() as client:
        stored = client.get(f"/v1/sessions/{browser_session}").json()
    assert stored["status"] == "completed"

    ended: set[str] = set()
    try:
        while not {on_a, on_b} <= ended:
            ended.add((await dashboard.until("session.ended")).data["sessionId"])
    finally:
        await dashboard.__aexit__(None, None, None)
    starts = {m.data["sessionId"] for m in dashboard.messages if m.event == "session.started"}
    assert {on_a, on_b} <= starts
