"""Fuzzing both call sockets of a real server process: random and mutated frames, sent before
`start`, during the greeting, mid-turn and after the end of a call.

Each example is one call. Whatever the frames, the server process lives on without an
unhandled exception, a frame before `start` on the Twilio stream closes it with 1008, and a
started call keeps answering: a keypad entry (Twilio) or a typed question (browser) sent after
the frames is answered, and the stored transcript holds the greeting (or the caller's input
that cut it before it began), that input and the answer.
Bounded: a fixed number of examples, derandomized, frames of a few hundred bytes (and a few
deep or huge ones).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.e2e.server import RunningServer, connect_instructions, running_server
from voxline.telephony.twilio import media
from voxline.transports import browser_protocol

GREETING = "Hi there."
ANSWER = "We open at nine."
STREAM_SID = "MZ" + "0" * 32
CALL_SID = "CA" + "0" * 32
ACCOUNT_SID = "AC" + "0" * 32
STAGES = ("before_start", "greeting", "mid_turn", "after_end")
EXAMPLES = 60
# Only guards against a hung call; no assertion depends on it.
PATIENCE_S = 30.0

Frame = str | bytes

AGENT: dict[str, Any] = {
    "name": "Fuzzed",
    "firstMessage": GREETING,
    "stt": {"provider": "scripted", "transcripts": ["what are your hours"], "latencyMs": 0},
    "llm": {
        "provider": "scripted",
        "firstTokenMs": 0,
        "tokensPerSecond": 1000,
        "defaultReply": ANSWER,
    },
    "tts": {"provider": "scripted", "firstByteMs": 0, "msPerCharacter": 5},
    "turnTaking": {"vad": "energy"},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # Twilio's REST API is not configured: the Twilio stream's hang-up closes the socket.
    with running_server(tmp_path_factory.mktemp("voxline-fuzz"), {}) as running:
        yield running


@pytest.fixture(scope="module")
def agent_id(server: RunningServer) -> str:
    with server.client() as client:
        response = client.post("/v1/agents", json=AGENT)
        assert response.status_code == 201, response.text
        created: str = response.json()["id"]
        return created


# --- frames ---------------------------------------------------------------------------------

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
_NON_ASCII = st.text(alphabet=st.characters(min_codepoint=0x80), min_size=1, max_size=40)
_NESTING = st.integers(min_value=1_000, max_value=60_000)


def _deep(opening: str, closing: str) -> st.SearchStrategy[str]:
    return _NESTING.map(lambda depth: opening * depth + closing * depth)


def _mutations(valid: list[dict[str, Any]]) -> st.SearchStrategy[Frame]:
    """Valid messages with one field replaced, removed or renamed, truncated, or bytes flipped."""

    @st.composite
    def replaced(draw: st.DrawFn) -> str:
        message = json.loads(json.dumps(draw(st.sampled_from(valid))))
        node = message
        while True:
            key = draw(st.sampled_from(sorted(node)))
            if isinstance(node[key], dict) and node[key] and draw(st.booleans()):
                node = node[key]
                continue
            action = draw(st.sampled_from(("replace", "remove", "non_ascii")))
            if action == "replace":
                node[key] = draw(_JSON)
            elif action == "remove":
                del node[key]
            else:
                node[key] = draw(_NON_ASCII)
            return json.dumps(message, ensure_ascii=draw(st.booleans()))

    @st.composite
    def damaged(draw: st.DrawFn) -> Frame:
        raw = json.dumps(draw(st.sampled_from(valid))).encode()
        if draw(st.booleans()):
            return raw[: draw(st.integers(0, len(raw) - 1))].decode()
        index = draw(st.integers(0, len(raw) - 1))
        flipped = raw[:index] + bytes([raw[index] ^ draw(st.integers(1, 255))]) + raw[index + 1 :]
        return flipped if draw(st.booleans()) else flipped.decode("utf-8", "replace")

    return replaced() | damaged()


def _frames(valid: list[dict[str, Any]]) -> st.SearchStrategy[Frame]:
    return st.one_of(
        st.text(max_size=200),
        st.binary(max_size=300),
        _JSON.map(json.dumps),
        _deep("[", "]"),
        _deep('{"a":', "}").map(lambda text: text.replace("}", "1}", 1)),
        st.integers(5_000, 50_000).map(
            lambda digits: '{"event":"media","sequenceNumber":"%s"}' % ("9" * digits)
        ),
        _mutations(valid),
    )


TWILIO_VALID = [
    json.loads(media.connected_json()),
    json.loads(media.inbound_media_json(3, STREAM_SID, 1, 20, b"\xff" * 160)),
    json.loads(media.mark_echo_json(4, STREAM_SID, "m1")),
    json.loads(media.dtmf_json(5, STREAM_SID, "7")),
    json.loads(media.start_json(1, STREAM_SID, ACCOUNT_SID, CALL_SID, {"relay": "x"})),
    json.loads(media.stop_json(6, STREAM_SID, ACCOUNT_SID, CALL_SID)),
]
BROWSER_VALID: list[dict[str, Any]] = [
    {"type": "start", "sampleRate": 16000, "variables": {"name": "Ada"}},
    {"type": "audio", "data": base64.b64encode(b"\x00\x01" * 160).decode()},
    {"type": "text", "text": "hello"},
    {"type": "interrupt"},
    {"type": "mark", "name": "m1"},
    {"type": "end"},
]


def _twilio_kind(frame: Frame) -> str:
    try:
        return type(media.parse_inbound(frame)).__name__
    except media.MediaStreamError:
        return "bad"


def _browser_kind(frame: Frame) -> str:
    if isinstance(frame, bytes):
        return "audio"
    try:
        return type(browser_protocol.parse_client_text(frame)).__name__
    except browser_protocol.BrowserProtocolError:
        return "bad"


# Before `start` a frame that is not `connected` must end the Twilio stream; after it, a frame
# that is a valid `stop` would end the call on purpose: neither is what these tests look at.
TWILIO_BEFORE_START = _frames(TWILIO_VALID).filter(
    lambda frame: _twilio_kind(frame) != "ConnectedMessage"
)
TWILIO_DURING_CALL = _frames(TWILIO_VALID).filter(
    lambda frame: _twilio_kind(frame) != "StopMessage"
)
BROWSER_FRAMES = _frames(BROWSER_VALID).filter(
    lambda frame: _browser_kind(frame) not in ("StartMessage", "EndMessage")
)


# --- one call -------------------------------------------------------------------------------


async def _send_all(ws: ClientConnection, frames: list[Frame]) -> None:
    with contextlib.suppress(ConnectionClosed):
        for frame in frames:
            await ws.send(frame)


async def _drain(
    ws: ClientConnection, events: list[dict[str, Any]], twilio: bool, started: asyncio.Event
) -> None:
    """Read the server's frames, echoing each mark at once (its audio counts as played);
    `started` is set on the browser's `session.started`."""
    with contextlib.suppress(ConnectionClosed):
        async for frame in ws:
            if not isinstance(frame, str):
                continue
            event = json.loads(frame)
            events.append(event)
            if twilio and event.get("event") == "mark":
                await ws.send(media.mark_echo_json(9, STREAM_SID, event["mark"]["name"]))
            elif not twilio and event.get("type") == "mark":
                await ws.send(json.dumps({"type": "mark", "name": event["name"]}))
            elif not twilio and event.get("type") == "session.started":
                started.set()


async def _transcript_until(http: httpx.AsyncClient, session_id: str, done: Any) -> dict[str, Any]:
    """The stored session, once `done(session)` holds (polled)."""
    async with asyncio.timeout(PATIENCE_S):
        while True:
            response = await http.get(f"/v1/sessions/{session_id}")
            assert response.status_code == 200, response.text
            session: dict[str, Any] = response.json()
            if done(session):
                return session
            await asyncio.sleep(0.05)


def _answered_after(session: dict[str, Any], role: str, text: str) -> bool:
    items = [(item["role"], item["text"]) for item in session["transcript"]]
    asked = [i for i, (r, t) in enumerate(items) if r == role and t.endswith(text)]
    return bool(asked) and any(r == "agent" and t == ANSWER for r, t in items[asked[-1] + 1 :])


def _greeted(session: dict[str, Any]) -> bool:
    """The greeting began, or the caller's input cut it before it began. Fuzzed frames may
    carry loud audio (speech to the detector: the scripted recognizer hears a question in it)
    or a valid keypad digit; either interrupts the greeting, and then only the clauses that
    began are stored, none if the input came first."""
    for item in session["transcript"]:
        if item["role"] == "agent" and item["data"].get("kind") in ("greeting", "resume"):
            return bool(item["text"]) and GREETING.startswith(item["text"])
        if item["role"] in ("caller", "dtmf"):
            return True
    return False


def _client(server: RunningServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {server.api_key}"},
        timeout=PATIENCE_S,
    )


async def _twilio_call(
    server: RunningServer, agent_id: str, stage: str, frames: list[Frame]
) -> None:
    async with _client(server) as http:
        response = await http.post(
            "/v1/sessions/twilio",
            json={"agentId": agent_id, "from": "+15550001", "to": "+15550002"},
        )
        assert response.status_code == 200, response.text
        session_id = response.json()["sessionId"]
        stream = connect_instructions(response.json()["twiml"])
        async with connect(stream.stream_url, open_timeout=PATIENCE_S) as ws:
            events: list[dict[str, Any]] = []
            reader = asyncio.create_task(_drain(ws, events, twilio=True, started=asyncio.Event()))
            await ws.send(media.connected_json())
            if stage == "before_start":
                await _send_all(ws, frames)
                async with asyncio.timeout(PATIENCE_S):
                    await ws.wait_closed()
                assert ws.close_code == 1008
                await reader
                return
            start = media.start_json(1, STREAM_SID, ACCOUNT_SID, CALL_SID, {"relay": stream.relay})
            await ws.send(start)
            if stage == "greeting":
                await _send_all(ws, frames)
            await _transcript_until(http, session_id, _greeted)
            if stage == "mid_turn":
                await ws.send(media.dtmf_json(2, STREAM_SID, "1"))
                await ws.send(media.dtmf_json(3, STREAM_SID, "#"))
                await _send_all(ws, frames)
            await ws.send(media.dtmf_json(4, STREAM_SID, "4"))
            await ws.send(media.dtmf_json(5, STREAM_SID, "#"))
            await _transcript_until(http, session_id, lambda s: _answered_after(s, "dtmf", "4#"))
            await ws.send(media.stop_json(6, STREAM_SID, ACCOUNT_SID, CALL_SID))
            if stage == "after_end":
                await _send_all(ws, frames)
            async with asyncio.timeout(PATIENCE_S):
                await reader
        session = await _transcript_until(http, session_id, lambda s: s["status"] != "in_progress")
    assert session["status"] == "completed", session
    assert _greeted(session), session["transcript"]
    assert _answered_after(session, "dtmf", "4#")


async def _browser_call(
    server: RunningServer, agent_id: str, stage: str, frames: list[Frame]
) -> None:
    async with _client(server) as http:
        response = await http.post(f"/v1/agents/{agent_id}/session-token", json={})
        assert response.status_code == 200, response.text
        async with connect(response.json()["url"], open_timeout=PATIENCE_S) as ws:
            events: list[dict[str, Any]] = []
            started = asyncio.Event()
            reader = asyncio.create_task(_drain(ws, events, twilio=False, started=started))
            if stage == "before_start":
                await _send_all(ws, frames)
            await ws.send(json.dumps({"type": "start", "sampleRate": 16000}))
            if stage == "greeting":
                await _send_all(ws, frames)
            async with asyncio.timeout(PATIENCE_S):
                await started.wait()
            session_id = next(e for e in events if e["type"] == "session.started")["sessionId"]
            await _transcript_until(http, session_id, _greeted)
            if stage == "mid_turn":
                await ws.send(json.dumps({"type": "text", "text": "first question"}))
                await _send_all(ws, frames)
            await ws.send(json.dumps({"type": "text", "text": "what are your hours"}))
            await _transcript_until(
                http, session_id, lambda s: _answered_after(s, "caller", "what are your hours")
            )
            await ws.send(json.dumps({"type": "end"}))
            if stage == "after_end":
                await _send_all(ws, frames)
            async with asyncio.timeout(PATIENCE_S):
                await reader
        session = await _transcript_until(http, session_id, lambda s: s["status"] != "in_progress")
    rejected = [frame for frame in frames if _browser_kind(frame) == "bad"]
    if rejected and stage != "after_end":
        assert any(event["type"] == "error" for event in events)
    assert session["status"] == "completed", session
    assert _greeted(session)
    assert _answered_after(session, "caller", "what are your hours")


def _assert_healthy(server: RunningServer) -> None:
    response = httpx.get(f"{server.base_url}/health", timeout=PATIENCE_S)
    assert response.status_code == 200
    log = server.log()
    assert "Traceback" not in log, log[-4000:]


_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@_SETTINGS
@given(
    stage=st.sampled_from(STAGES),
    data=st.data(),
)
def test_twilio_stream_survives_malformed_frames(
    server: RunningServer, agent_id: str, stage: str, data: st.DataObject
) -> None:
    strategy = TWILIO_BEFORE_START if stage == "before_start" else TWILIO_DURING_CALL
    frames = data.draw(st.lists(strategy, min_size=1, max_size=8), label="frames")
    asyncio.run(_twilio_call(server, agent_id, stage, frames))
    _assert_healthy(server)


@_SETTINGS
@given(
    stage=st.sampled_from(STAGES),
    frames=st.lists(BROWSER_FRAMES, min_size=1, max_size=8),
)
def test_browser_session_survives_malformed_frames(
    server: RunningServer, agent_id: str, stage: str, frames: list[Frame]
) -> None:
    asyncio.run(_browser_call(server, agent_id, stage, frames))
    _assert_healthy(server)
