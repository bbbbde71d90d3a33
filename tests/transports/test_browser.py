"""`BrowserTransport` over a real Starlette WebSocket (in-process test client)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

import numpy as np
import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from voxline.runtime.events import AgentInterrupted
from voxline.runtime.transport import (
    AudioIn,
    HangupIn,
    InboundEvent,
    InterruptIn,
    MarkPlayed,
    TextIn,
    TransferUnsupported,
)
from voxline.transports.browser import BrowserChannel, BrowserTransport, receive_start

Script = Callable[[BrowserTransport], Awaitable[None]]


class _Harness:
    """An app whose socket runs `script` on a 16 kHz transport after a valid `start`, and
    records what the transport reads until its events end."""

    def __init__(self) -> None:
        self.events: list[InboundEvent] = []
        self.script: Script | None = None

    async def endpoint(self, websocket: WebSocket) -> None:
        await websocket.accept()
        channel = BrowserChannel(websocket)
        start = await receive_start(channel)
        transport = BrowserTransport(channel, start.sample_rate)
        if self.script is not None:
            await self.script(transport)
        async for event in transport.events():
            self.events.append(event)
        await channel.close()


@pytest.fixture
def harness() -> _Harness:
    return _Harness()


@pytest.fixture
def client(harness: _Harness) -> Iterator[TestClient]:
    app = Starlette(routes=[WebSocketRoute("/ws", harness.endpoint)])
    with TestClient(app) as client:
        yield client


def test_binary_frames_are_caller_audio(client: TestClient, harness: _Harness) -> None:
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "start"})
        ws.send_bytes(np.array([1, 2, -3], dtype="<i2").tobytes())
        ws.send_json({"type": "end"})
    audio, end = harness.events
    assert isinstance(audio, AudioIn) and audio.pcm.tolist() == [1, 2, -3]
    assert end == HangupIn("client_end")


def test_control_messages_become_runtime_events(client: TestClient, harness: _Harness) -> None:
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "start"})
        ws.send_json({"type": "text", "text": "hello"})
        ws.send_json({"type": "mark", "name": "r1.c1"})
        ws.send_json({"type": "interrupt"})
        ws.send_json({"type": "audio", "data": "BQD7/w=="})
        ws.send_json({"type": "end"})
    text, mark, interrupt, audio, end = harness.events
    assert (text, mark, interrupt) == (TextIn("hello"), MarkPlayed("r1.c1"), InterruptIn())
    assert isinstance(audio, AudioIn) and audio.pcm.tolist() == [5, -5]
    assert end == HangupIn("client_end")


def test_a_dropped_socket_is_a_hang_up(client: TestClient, harness: _Harness) -> None:
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "start"})
        ws.send_json({"type": "text", "text": "bye"})
    assert harness.events == [TextIn("bye"), HangupIn("disconnected")]


def test_messages_before_start_get_an_error_and_are_dropped(
    client: TestClient, harness: _Harness
) -> None:
    with client.websocket_connect("/ws") as ws:
        ws.send_bytes(b"\x00\x00")
        assert ws.receive_json() == {"type": "error", "message": "send a start message first"}
        ws.send_json({"type": "start"})
        ws.send_json({"type": "end"})
    assert harness.events == [HangupIn("client_end")]


def test_bad_messages_get_an_error_and_the_stream_goes_on(
    client: TestClient, harness: _Harness
) -> None:
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "start"})
        ws.send_text("{oops")
        first = ws.receive_json()
        ws.send_json({"type": "audio", "data": "!!"})
        second = ws.receive_json()
        ws.send_json({"type": "start"})
        third = ws.receive_json()
        ws.send_json({"type": "text", "text": "still here"})
        ws.send_json({"type": "end"})
    assert [first["type"], second["type"], third["type"]] == ["error"] * 3
    assert "base64" in second["message"] and "already started" in third["message"]
    assert harness.events == [TextIn("still here"), HangupIn("client_end")]


def test_agent_audio_is_binary_and_marks_and_clear_are_events(
    client: TestClient, harness: _Harness
) -> None:
    async def speak(transport: BrowserTransport) -> None:
        await transport.send_audio(np.array([7, -7], dtype=np.int16))
        await transport.send_mark("r1.c1")
        await transport.clear()

    harness.script = speak
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "start", "sampleRate": 24000})
        assert np.frombuffer(ws.receive_bytes(), dtype="<i2").tolist() == [7, -7]
        assert ws.receive_json() == {"type": "mark", "name": "r1.c1"}
        assert ws.receive_json() == {"type": "clear"}
        ws.send_json({"type": "end"})


def test_transport_rates_follow_the_start_message(client: TestClient, harness: _Harness) -> None:
    rates: list[tuple[int, int]] = []

    async def note(transport: BrowserTransport) -> None:
        rates.append((transport.input_rate, transport.output_rate))

    harness.script = note
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "start", "sampleRate": 48000})
        ws.send_json({"type": "end"})
    assert rates == [(48000, 48000)]


def test_call_events_are_sent_with_camel_case_keys(client: TestClient, harness: _Harness) -> None:
    async def emit(transport: BrowserTransport) -> None:
        await transport.emit(
            AgentInterrupted(response="r2", heard_text="We are", text="We are open", seq=4)
        )

    harness.script = emit
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "start"})
        assert ws.receive_json() == {
            "seq": 4,
            "atMs": 0,
            "type": "agent.interrupted",
            "response": "r2",
            "heardText": "We are",
            "text": "We are open",
        }
        ws.send_json({"type": "end"})


def test_transfer_is_unsupported_without_a_phone_line(
    client: TestClient, harness: _Harness
) -> None:
    refused: list[str] = []

    async def transfer(transport: BrowserTransport) -> None:
        try:
            await transport.transfer("+15550100")
        except TransferUnsupported as exc:
            refused.append(str(exc))

    harness.script = transfer
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "start"})
        ws.send_json({"type": "end"})
    assert refused == ["a browser session has no phone line to transfer"]


def test_after_hang_up_the_transport_reads_no_more_client_input(
    client: TestClient, harness: _Harness
) -> None:
    async def hang_up(transport: BrowserTransport) -> None:
        await transport.hang_up()

    harness.script = hang_up
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "start"})
    assert harness.events == [HangupIn("agent_hangup")]
