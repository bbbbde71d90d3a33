"""Call traces exported with OTLP/HTTP to an in-process receiver."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.e2e.server import RunningServer, running_server, scripted_agent
from tests.helpers.otlp_receiver import OtlpReceiver, running_otlp_receiver
from tests.helpers.speech import synthesize_speech
from tests.transports.browser_peer import BrowserPeer
from voxline.observability.tracing import CallTracing
from voxline.runtime.events import SessionEnded, SessionStarted, TurnMetricsEvent


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with running_otlp_receiver() as running:
        yield running


def test_a_call_is_a_span_with_turns_and_their_provider_spans(receiver: OtlpReceiver) -> None:
    tracing = CallTracing(receiver.endpoint)
    trace = tracing.call("sess_1")
    trace.observe(SessionStarted(agent_id="agent_1", channel="phone", direction="inbound"))
    trace.observe(
        TurnMetricsEvent(
            turn=1,
            end_of_turn_wait_ms=200,
            stt_ms=120,
            llm_first_token_ms=300,
            tts_first_byte_ms=90,
            turn_latency_ms=700,
        )
    )
    trace.observe(SessionEnded(reason="caller_hangup", first_response_ms=400))
    tracing.shutdown()

    (call,) = receiver.named("call")
    (turn,) = receiver.named("turn")
    stt, llm, tts = (receiver.named(name)[0] for name in ("stt", "llm", "tts"))
    assert turn.parent_span_id == call.span_id
    assert {stt.parent_span_id, llm.parent_span_id, tts.parent_span_id} == {turn.span_id}
    assert {span.trace_id for span in (call, turn, stt, llm, tts)} == {call.trace_id}
    assert turn.end_time_unix_nano - turn.start_time_unix_nano == 700_000_000
    assert llm.end_time_unix_nano - llm.start_time_unix_nano == 300_000_000
    assert stt.end_time_unix_nano == llm.start_time_unix_nano
    attributes = {a.key: a.value.string_value for a in call.attributes}
    assert attributes["voxline.end_reason"] == "caller_hangup"
    assert attributes["voxline.channel"] == "phone"
    assert receiver.content_types[0] == "application/x-protobuf"


@pytest.fixture
def server(
    tmp_path_factory: pytest.TempPathFactory, receiver: OtlpReceiver
) -> Iterator[RunningServer]:
    env = {"VOXLINE_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    with running_server(tmp_path_factory.mktemp("voxline-traces"), env) as running:
        yield running


async def test_a_server_exports_the_trace_of_each_call(
    server: RunningServer, receiver: OtlpReceiver
) -> None:
    with server.client() as client:
        agent_id = client.post("/v1/agents", json=scripted_agent()).json()["id"]
        url = client.post(f"/v1/agents/{agent_id}/session-token", json={}).json()["url"]
    async with BrowserPeer(url) as peer:
        session_id = (await peer.start())["sessionId"]
        await peer.wait_for_agent("thanks for calling.")
        await peer.wait_until_quiet()
        peer.say(synthesize_speech("What are your opening hours?", 16000))
        await peer.wait_for("turn.metrics", timeout=15)
        await peer.send_json({"type": "end"})
        await peer.wait_closed()
    for _ in range(50):
        if receiver.named("call"):
            break
        await asyncio.sleep(0.1)

    (call,) = receiver.named("call")
    attributes = {a.key: a.value.string_value for a in call.attributes}
    assert attributes["voxline.session_id"] == session_id
    turns = receiver.named("turn")
    assert turns and turns[0].parent_span_id == call.span_id
    assert receiver.named("llm")
