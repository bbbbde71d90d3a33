"""A recorded call against a real server process: the file, its ranges, retention by delete."""

from __future__ import annotations

import asyncio
import io
import os
import signal
from pathlib import Path

import av
import httpx
import numpy as np

from tests.e2e.server import RunningServer, running_server
from tests.e2e.test_twilio_call import _answer_call, _create_agent, _sessions, _wait_status
from tests.fakes.twilio_api import FakeTwilioApi
from tests.helpers.speech import synthesize_speech
from voxline.simulator.twilio_peer import SimulatedTwilioCall

CRASH_AFTER_S = 5.0


def _decode(data: bytes) -> tuple[np.ndarray, int]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        frames = [frame.to_ndarray() for frame in container.decode(stream)]
        return np.concatenate(frames, axis=1), stream.rate


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples.astype(np.float64)))))


async def test_a_barged_in_call_is_recorded_as_heard_and_served_by_range(
    server: RunningServer, twilio_api: FakeTwilioApi
) -> None:
    agent_id = _create_agent(
        server, firstMessage="Welcome to the clinic. " * 6, recording={"enabled": True}
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
    assert call.clears
    session = await _wait_status(server, session_id, "completed")

    with server.client() as client:
        whole = client.get(f"/v1/sessions/{session_id}/recording")
        assert whole.status_code == 200, whole.text
        assert whole.headers["content-type"] == "audio/ogg"
        assert whole.headers["accept-ranges"] == "bytes"
        size = len(whole.content)
        assert int(whole.headers["content-length"]) == size
        part = client.get(
            f"/v1/sessions/{session_id}/recording", headers={"Range": "bytes=100-199"}
        )
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 100-199/{size}"
        assert part.content == whole.content[100:200]
        tail = client.get(f"/v1/sessions/{session_id}/recording", headers={"Range": "bytes=-10"})
        assert tail.status_code == 206 and tail.content == whole.content[-10:]
        beyond = client.get(
            f"/v1/sessions/{session_id}/recording", headers={"Range": f"bytes={size}-"}
        )
        assert beyond.status_code == 416

    audio, rate = _decode(whole.content)
    assert audio.shape[0] == 2
    duration = audio.shape[1] / rate
    assert duration > 3.0
    caller, agent = audio[0], audio[1]
    # The greeting plays from the start until the caller speaks over it, then stops.
    tenth = rate // 10
    loud = [
        i for i in range(len(caller) // tenth) if _rms(caller[i * tenth : (i + 1) * tenth]) > 0.02
    ]
    assert loud, "the caller's words are on the left channel"
    barge_in = loud[0] * tenth
    assert 1.0 * rate < barge_in < 3.0 * rate
    assert _rms(agent[barge_in - 5 * tenth : barge_in]) > 0.01
    assert _rms(agent[barge_in + 5 * tenth : barge_in + 10 * tenth]) < 0.003
    greeting = session["transcript"][0]
    assert greeting["interrupted"] is True
    heard_share = len(greeting["heardText"]) / len(greeting["text"])
    assert heard_share < 0.8


async def test_deleting_a_session_deletes_its_recording(
    server: RunningServer, twilio_api: FakeTwilioApi
) -> None:
    agent_id = _create_agent(server, recording={"enabled": True})
    call_sid, stream_url, relay = _answer_call(server, twilio_api, agent_id)
    session_id = _sessions(server, agent_id)[0]["id"]
    async with SimulatedTwilioCall(stream_url, relay=relay, call_sid=call_sid) as call:
        with server.client() as client:
            live = client.delete(f"/v1/sessions/{session_id}")
            assert live.status_code == 409, "a call in progress is not deleted"
        await call.wait_for_agent_audio(timeout=5)
        await call.hang_up()
    await _wait_status(server, session_id, "completed")

    with server.client() as client:
        assert client.get(f"/v1/sessions/{session_id}/recording").status_code == 200
        assert client.delete(f"/v1/sessions/{session_id}").status_code == 204
        assert client.get(f"/v1/sessions/{session_id}").status_code == 404
        assert client.get(f"/v1/sessions/{session_id}/recording").status_code == 404
        assert client.delete(f"/v1/sessions/{session_id}").status_code == 404


async def test_an_agent_that_does_not_record_leaves_no_recording(
    server: RunningServer, twilio_api: FakeTwilioApi
) -> None:
    agent_id = _create_agent(server)
    call_sid, stream_url, relay = _answer_call(server, twilio_api, agent_id)
    session_id = _sessions(server, agent_id)[0]["id"]
    async with SimulatedTwilioCall(stream_url, relay=relay, call_sid=call_sid) as call:
        await call.wait_for_agent_audio(timeout=5)
        await call.hang_up()
    await _wait_status(server, session_id, "completed")
    with server.client() as client:
        missing = client.get(f"/v1/sessions/{session_id}/recording")
        assert missing.status_code == 404
        assert "no recording" in missing.json()["error"]["message"]


async def test_listen_in_streams_the_live_call_until_it_ends(
    server: RunningServer, twilio_api: FakeTwilioApi
) -> None:
    agent_id = _create_agent(server, recording={"enabled": True})
    call_sid, stream_url, relay = _answer_call(server, twilio_api, agent_id)
    session_id = _sessions(server, agent_id)[0]["id"]
    headers = {"Authorization": f"Bearer {server.api_key}"}
    url = f"{server.base_url}/v1/sessions/{session_id}/listen"
    async with (
        SimulatedTwilioCall(stream_url, relay=relay, call_sid=call_sid) as call,
        httpx.AsyncClient(headers=headers, timeout=10) as client,
    ):
        await call.wait_for_agent_audio(timeout=5)
        async with client.stream("GET", url) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("audio/L16")
            received = bytearray()
            async for chunk in response.aiter_bytes():
                received.extend(chunk)
                if len(received) >= 16000 * 4:  # a second of stereo PCM16
                    break
        await call.hang_up()
        frames = np.frombuffer(bytes(received[: 16000 * 4]), dtype=np.int16).reshape(-1, 2)
        assert _rms(frames[:, 1].astype(np.float64) / 32768) > 0.01, "the agent is heard"
        await _wait_status(server, session_id, "completed")
        ended = await client.get(url)
        assert ended.status_code == 409


async def test_a_crash_loses_at_most_the_last_seconds_of_a_recording(
    tmp_path: Path, twilio_api: FakeTwilioApi
) -> None:
    env = {
        "VOXLINE_TWILIO_ACCOUNT_SID": twilio_api.account_sid,
        "VOXLINE_TWILIO_AUTH_TOKEN": twilio_api.auth_token,
        "VOXLINE_TWILIO_API_BASE_URL": twilio_api.base_url,
    }
    with running_server(tmp_path, env) as server:
        agent_id = _create_agent(
            server, firstMessage="Welcome to the clinic. " * 10, recording={"enabled": True}
        )
        call_sid, stream_url, relay = _answer_call(server, twilio_api, agent_id)
        session = _sessions(server, agent_id)[0]
        async with SimulatedTwilioCall(stream_url, relay=relay, call_sid=call_sid) as call:
            await call.wait_for_agent_audio(timeout=5)
            await asyncio.sleep(CRASH_AFTER_S)
            os.kill(server.pid, signal.SIGKILL)
            await call.wait_closed(timeout=10)

    path = tmp_path / "recordings" / session["workspaceId"] / f"{session['id']}.ogg"
    audio, rate = _decode(path.read_bytes())
    kept = audio.shape[1] / rate
    assert CRASH_AFTER_S - 2.0 <= kept <= CRASH_AFTER_S + 1.0, kept
    assert _rms(audio[1]) > 0.01, "the agent's greeting is there"
