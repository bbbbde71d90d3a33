"""The simulated Twilio peer against tiny local WebSocket servers that act as voice agents."""

import asyncio
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import numpy as np
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from voxline.audio.mulaw import decode_mulaw, encode_mulaw
from voxline.audio.pcm import Pcm16
from voxline.simulator.twilio_peer import CallEnded, SimulatedTwilioCall
from voxline.telephony.twilio.media import (
    ConnectedMessage,
    DtmfMessage,
    InboundMessage,
    MarkMessage,
    MediaMessage,
    StartMessage,
    StopMessage,
    clear_json,
    mark_json,
    media_json,
    parse_inbound,
)

Agent = Callable[[ServerConnection], Awaitable[None]]
SILENCE = bytes([0xFF]) * 160


def _tone(seconds: float, level: int = 4000) -> Pcm16:
    t = np.arange(round(seconds * 8000)) / 8000
    return (np.sin(2 * np.pi * 440 * t) * level).astype(np.int16)


@asynccontextmanager
async def _agent_server(agent: Agent) -> AsyncIterator[str]:
    async def handler(ws: ServerConnection) -> None:
        with suppress(ConnectionClosed):
            await agent(ws)

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/v1/sessions/twilio/stream"


async def _messages(ws: ServerConnection) -> AsyncIterator[InboundMessage]:
    async for raw in ws:
        yield parse_inbound(raw)


async def _start(ws: ServerConnection) -> StartMessage:
    async for message in _messages(ws):
        if isinstance(message, StartMessage):
            return message
    raise AssertionError("the stream closed before start")


async def _drain(ws: ServerConnection) -> None:
    """Read until the caller hangs up (an agent that stops reading would stall the socket)."""
    async for _ in ws:
        pass


async def _send_audio(ws: ServerConnection, sid: str, pcm: Pcm16, chunk: int = 160) -> None:
    for offset in range(0, len(pcm), chunk):
        await ws.send(media_json(sid, encode_mulaw(pcm[offset : offset + chunk])))


async def test_call_opens_with_connected_then_start_carrying_the_relay() -> None:
    received: list[InboundMessage] = []
    got_media = asyncio.Event()

    async def agent(ws: ServerConnection) -> None:
        async for message in _messages(ws):
            received.append(message)
            if isinstance(message, MediaMessage):
                got_media.set()

    async with (
        _agent_server(agent) as url,
        SimulatedTwilioCall(url, relay="tok.sig", custom_parameters={"lang": "en"}) as call,
    ):
        await asyncio.wait_for(got_media.wait(), 5)

    connected, start, media = received[:3]
    assert connected == ConnectedMessage(protocol="Call", version="1.0.0")
    assert isinstance(start, StartMessage)
    assert (start.sequence_number, start.stream_sid, start.call_sid) == (
        1,
        call.stream_sid,
        call.call_sid,
    )
    assert start.custom_parameters == {"lang": "en", "relay": "tok.sig"}
    assert (start.media_format.encoding, start.media_format.sample_rate) == ("audio/x-mulaw", 8000)
    assert media == MediaMessage(2, call.stream_sid, "inbound", 1, 0, SILENCE)


async def test_media_is_numbered_without_gaps_and_stop_ends_the_stream() -> None:
    received: list[InboundMessage] = []
    ten_frames = asyncio.Event()

    async def agent(ws: ServerConnection) -> None:
        async for message in _messages(ws):
            received.append(message)
            if sum(isinstance(m, MediaMessage) for m in received) >= 10:
                ten_frames.set()

    async with _agent_server(agent) as url, SimulatedTwilioCall(url) as call:
        await asyncio.wait_for(ten_frames.wait(), 5)
        await call.hang_up()
        await asyncio.sleep(0.05)

    media = [m for m in received if isinstance(m, MediaMessage)]
    assert [m.sequence_number for m in media] == list(range(2, len(media) + 2))
    assert [m.chunk for m in media] == list(range(1, len(media) + 1))
    assert [m.timestamp for m in media] == [20 * i for i in range(len(media))]
    stop = received[-1]
    assert isinstance(stop, StopMessage)
    assert (stop.sequence_number, stop.call_sid) == (len(media) + 2, call.call_sid)
    assert call.closed_at is not None and not call.closed_by_server


async def test_caller_speech_reaches_the_server_as_mulaw() -> None:
    speech = _tone(0.05)
    payloads: list[bytes] = []

    async def agent(ws: ServerConnection) -> None:
        async for message in _messages(ws):
            if isinstance(message, MediaMessage):
                payloads.append(message.payload)

    async with _agent_server(agent) as url, SimulatedTwilioCall(url) as call:
        utterance = call.say(speech)
        await asyncio.wait_for(utterance.wait_sent(), 5)
        await asyncio.sleep(0.1)

    voiced = [p for p in payloads if p != SILENCE]
    heard = decode_mulaw(b"".join(voiced))
    expected = decode_mulaw(encode_mulaw(speech))
    assert len(voiced) == 3
    assert np.array_equal(heard[:400], expected)
    assert not heard[400:].any()
    assert utterance.started_at is not None and utterance.ended_at is not None
    assert utterance.ended_at - utterance.started_at == pytest.approx(0.04, abs=0.03)


async def test_dtmf_press_reaches_the_server() -> None:
    digits: list[str] = []
    pressed = asyncio.Event()

    async def agent(ws: ServerConnection) -> None:
        async for message in _messages(ws):
            if isinstance(message, DtmfMessage):
                digits.append(message.digit)
                pressed.set()

    async with _agent_server(agent) as url, SimulatedTwilioCall(url) as call:
        await call.press("5")
        await asyncio.wait_for(pressed.wait(), 5)
    assert digits == ["5"]


async def test_mark_with_nothing_buffered_echoes_before_audio_marks_echo_after_it() -> None:
    echoes: list[str] = []
    both = asyncio.Event()

    async def agent(ws: ServerConnection) -> None:
        start = await _start(ws)
        await ws.send(mark_json(start.stream_sid, "early"))
        await _send_audio(ws, start.stream_sid, _tone(0.3))
        await ws.send(mark_json(start.stream_sid, "late"))
        async for message in _messages(ws):
            if isinstance(message, MarkMessage):
                echoes.append(message.name)
                if len(echoes) == 2:
                    both.set()

    async with _agent_server(agent) as url, SimulatedTwilioCall(url) as call:
        await asyncio.wait_for(both.wait(), 5)

    audio_end = call.segments[-1].end
    early, late = call.marks
    assert echoes == ["early", "late"]
    assert early.echoed_at < audio_end <= late.echoed_at
    assert not early.cleared and not late.cleared


async def test_clear_cuts_playout_and_echoes_pending_marks_at_once() -> None:
    echoed = asyncio.Event()

    async def agent(ws: ServerConnection) -> None:
        start = await _start(ws)
        await ws.send(media_json(start.stream_sid, encode_mulaw(_tone(2.0))))
        await ws.send(mark_json(start.stream_sid, "after-tone"))
        frames = 0
        async for message in _messages(ws):
            if isinstance(message, MediaMessage):
                frames += 1
                if frames == 10:
                    await ws.send(clear_json(start.stream_sid))
            elif isinstance(message, MarkMessage):
                echoed.set()

    async with _agent_server(agent) as url, SimulatedTwilioCall(url) as call:
        await asyncio.wait_for(echoed.wait(), 5)

    (segment,) = call.segments
    (mark,) = call.marks
    (cleared_at,) = call.clears
    assert mark.name == "after-tone" and mark.cleared
    assert cleared_at <= mark.echoed_at < segment.start + 2.0
    assert segment.end == cleared_at
    assert 0 < segment.played_samples < 16000
    assert len(call.agent_track()) == round(cleared_at * 8000)


async def test_agent_answer_is_timed_from_the_end_of_caller_speech() -> None:
    async def agent(ws: ServerConnection) -> None:
        start = await _start(ws)
        speaking = False
        async for message in _messages(ws):
            if not isinstance(message, MediaMessage):
                continue
            if message.payload != SILENCE:
                speaking = True
            elif speaking:
                speaking = False
                await _send_audio(ws, start.stream_sid, _tone(0.2))
                await ws.send(mark_json(start.stream_sid, "answer"))

    async with _agent_server(agent) as url, SimulatedTwilioCall(url) as call:
        utterance = call.say(_tone(0.2))
        await asyncio.wait_for(utterance.wait_sent(), 5)
        heard = await call.wait_for_agent_audio(timeout=5)

    (turn,) = call.turns()
    assert utterance.ended_at is not None
    assert turn.agent_audio_at == heard
    assert turn.latency == pytest.approx(heard - utterance.ended_at)
    assert turn.latency is not None and turn.latency > 0
    assert not turn.overlapped
    assert call.playout_gaps() == []


async def test_first_response_is_when_the_greeting_was_first_heard() -> None:
    async def agent(ws: ServerConnection) -> None:
        start = await _start(ws)
        greeting = np.concatenate([np.zeros(800, dtype=np.int16), np.full(1600, 3000, np.int16)])
        await ws.send(media_json(start.stream_sid, encode_mulaw(greeting)))
        await _drain(ws)

    async with _agent_server(agent) as url, SimulatedTwilioCall(url) as call:
        heard = await call.wait_for_agent_audio(timeout=5, since=0.0)

    assert call.first_response == heard
    assert heard == pytest.approx(call.segments[0].start + 0.1)


async def test_underrun_inside_an_answer_is_reported_as_a_gap() -> None:
    async def agent(ws: ServerConnection) -> None:
        start = await _start(ws)
        await _send_audio(ws, start.stream_sid, _tone(0.1))
        await asyncio.sleep(0.5)
        await _send_audio(ws, start.stream_sid, _tone(0.1))
        await _drain(ws)

    async with _agent_server(agent) as url, SimulatedTwilioCall(url) as call:
        await call.wait_for_agent_audio(timeout=5, since=0.0)
        await call.wait_for_agent_audio(timeout=5, since=call.segments[4].end + 0.01)

    (gap,) = call.playout_gaps()
    assert gap.start == pytest.approx(call.segments[4].end)
    assert gap.end == pytest.approx(call.segments[5].start)


async def test_agent_silence_is_judged_by_the_playout_clock() -> None:
    async def agent(ws: ServerConnection) -> None:
        start = await _start(ws)
        await ws.send(media_json(start.stream_sid, encode_mulaw(_tone(0.3))))
        await _drain(ws)

    async with _agent_server(agent) as url, SimulatedTwilioCall(url) as call:
        await call.wait_for_agent_audio(timeout=5, since=0.0)
        playing_silent = call.agent_silent_for(50)
        stopped = await call.wait_until_agent_silent(100, timeout=5)
        assert call.agent_silent_for(100)

    assert not playing_silent
    assert stopped == pytest.approx(call.segments[0].end)


async def test_server_closing_the_stream_ends_the_call() -> None:
    async def agent(ws: ServerConnection) -> None:
        await _start(ws)
        await ws.close()

    async with _agent_server(agent) as url, SimulatedTwilioCall(url) as call:
        await call.wait_closed(timeout=5)
        with pytest.raises(CallEnded):
            await call.wait_for_agent_audio(timeout=5)
        with pytest.raises(CallEnded):
            await call.press("1")
    assert call.closed_by_server


async def test_messages_twilio_would_refuse_are_recorded_as_errors() -> None:
    echoed = asyncio.Event()

    async def agent(ws: ServerConnection) -> None:
        start = await _start(ws)
        await ws.send(media_json("MZ" + "0" * 32, SILENCE))
        await ws.send("not json")
        await ws.send(b"\x00\x01")
        await ws.send(mark_json(start.stream_sid, "done"))
        async for message in _messages(ws):
            if isinstance(message, MarkMessage):
                echoed.set()

    async with _agent_server(agent) as url, SimulatedTwilioCall(url) as call:
        await asyncio.wait_for(echoed.wait(), 5)

    assert len(call.errors) == 3
    assert call.segments == []


async def test_wav_dump_holds_caller_left_and_agent_right(tmp_path: Path) -> None:
    async def agent(ws: ServerConnection) -> None:
        start = await _start(ws)
        async for message in _messages(ws):
            if isinstance(message, MediaMessage) and message.payload != SILENCE:
                await _send_audio(ws, start.stream_sid, _tone(0.2, level=8000))
                break
        await _drain(ws)

    path = tmp_path / "call.wav"
    async with _agent_server(agent) as url, SimulatedTwilioCall(url, wav_path=path) as call:
        call.say(_tone(0.2))
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_until_agent_silent(50, timeout=5)

    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    caller_loud = np.flatnonzero(np.abs(frames[:, 0].astype(np.int32)) > 1000)
    agent_loud = np.flatnonzero(np.abs(frames[:, 1].astype(np.int32)) > 1000)
    assert caller_loud.size and agent_loud.size
    assert caller_loud[0] < agent_loud[0]
    assert np.abs(frames[:, 1]).max() > np.abs(frames[:, 0]).max()


async def test_speak_returns_once_the_last_frame_is_sent() -> None:
    async def agent(ws: ServerConnection) -> None:
        await _start(ws)
        await _drain(ws)

    async with _agent_server(agent) as url, SimulatedTwilioCall(url) as call:
        utterance = await call.speak(_tone(0.1))
        assert utterance.ended_at is not None
        assert utterance.ended_at <= call.now()


async def test_speak_raises_call_ended_when_the_server_hangs_up_mid_utterance() -> None:
    async def agent(ws: ServerConnection) -> None:
        await _start(ws)
        async for message in _messages(ws):
            if isinstance(message, MediaMessage) and message.chunk >= 5:
                await ws.close()
                return

    async with _agent_server(agent) as url, SimulatedTwilioCall(url) as call:
        with pytest.raises(CallEnded):
            await call.speak(_tone(5.0))
