"""Outbound calls end to end: a real `voxline serve` (SQLite) dialing through the simulated
Twilio, whose callbacks arrive duplicated and out of order."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from twilio.request_validator import RequestValidator

from tests.e2e.cloud import CloudThread, running_cloud
from tests.e2e.server import RunningServer, running_server, scripted_agent
from voxline.simulator.twilio_cloud import CallbackChaos, Callee, Timing

FROM = "+14155550100"
GREETING = "Hello, this is the clinic calling about your appointment tomorrow."
VOICEMAIL = "Hi, this is the clinic. Please call us back to confirm."


def _tone(seconds: float) -> np.ndarray[Any, np.dtype[np.int16]]:
    t = np.arange(round(seconds * 8000)) / 8000
    return (np.sin(2 * np.pi * 300 * t) * 8000).astype(np.int16)


@pytest.fixture(scope="module")
def cloud() -> Iterator[CloudThread]:
    callee = Callee(lines=[_tone(0.8)], record_seconds=8.0, max_seconds=30.0)
    with running_cloud(
        callee=callee,
        # No-answer numbers ring for the whole ring timeout, as on Twilio.
        timing=Timing(no_answer=None),
        chaos=CallbackChaos(duplicate=0.3, reorder=0.3, seed=7),
    ) as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, cloud: CloudThread) -> Iterator[RunningServer]:
    data_dir: Path = tmp_path_factory.mktemp("voxline-outbound")
    env = {
        **cloud.server_env(),
        "VOXLINE_TWILIO_CALLS_PER_SECOND": "20",
        "VOXLINE_DISPATCH_POLL_INTERVAL_SECONDS": "0.1",
    }
    with running_server(data_dir, env) as running:
        yield running


@pytest.fixture(scope="module")
def agent_id(server: RunningServer) -> str:
    agent = scripted_agent(
        firstMessage=GREETING,
        stt={"provider": "scripted", "transcripts": ["yes that works for me"], "latencyMs": 30},
        llm={
            "provider": "scripted",
            "firstTokenMs": 20,
            "rules": [
                {
                    "match": "works",
                    "say": "Great, see you then. Goodbye!",
                    "tool": {"name": "end_call"},
                }
            ],
        },
    )
    with server.client() as client:
        response = client.post("/v1/agents", json=agent)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


def _create(server: RunningServer, agent_id: str, to: str, **options: Any) -> dict[str, Any]:
    with server.client() as client:
        response = client.post(
            "/v1/tasks", json={"agentId": agent_id, "to": to, "from": FROM, **options}
        )
        assert response.status_code == 201, response.text
        task: dict[str, Any] = response.json()
        return task


def _get(server: RunningServer, path: str) -> dict[str, Any]:
    with server.client() as client:
        response = client.get(path)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def _wait(
    server: RunningServer, task_id: str, *statuses: str, timeout: float = 60.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        task = _get(server, f"/v1/tasks/{task_id}")
        if task["status"] in statuses:
            return task
        if time.monotonic() > deadline:
            raise AssertionError(f"task stayed {task['status']}: {task}\n{server.log()[-3000:]}")
        time.sleep(0.1)


def _transcript(server: RunningServer, session_id: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        session = _get(server, f"/v1/sessions/{session_id}")
        if session["status"] in ("completed", "failed") or time.monotonic() > deadline:
            return list(session["transcript"])
        time.sleep(0.1)


def test_an_answered_call_holds_the_conversation(server: RunningServer, agent_id: str) -> None:
    task = _create(server, agent_id, "+15550000001", metadata={"appointment": 42})
    done = _wait(server, task["id"], "completed", "failed")
    assert done["status"] == "completed", done
    (attempt,) = done["attempts"]
    assert attempt["callSid"].startswith("CA") and attempt["status"] == "completed"
    assert attempt["durationSeconds"] is not None
    transcript = _transcript(server, attempt["sessionId"])
    said = [
        (item["role"], item["text"]) for item in transcript if item["role"] in ("agent", "caller")
    ]
    # The callee hears the agent's first message first, without having to speak.
    assert said[0] == ("agent", GREETING)
    assert ("caller", "yes that works for me") in said
    assert ("agent", "Great, see you then. Goodbye!") in said
    session = _get(server, f"/v1/sessions/{attempt['sessionId']}")
    assert session["direction"] == "outbound" and session["callSid"] == attempt["callSid"]


def test_busy_then_answered_on_the_retry(
    server: RunningServer, agent_id: str, cloud: CloudThread
) -> None:
    cloud.cloud.set_outcome("+15550000002", ["busy", "answer"])
    retry = {"maxAttempts": 2, "on": ["busy"], "backoffSeconds": 0}
    task = _create(server, agent_id, "+15550000002", retry=retry)
    done = _wait(server, task["id"], "completed", "busy", "failed")
    assert done["status"] == "completed", done
    assert [a["status"] for a in done["attempts"]] == ["busy", "completed"]
    assert done["attempts"][0]["sessionId"] is None


def test_no_answer_until_the_attempts_run_out(
    server: RunningServer, agent_id: str, cloud: CloudThread
) -> None:
    cloud.cloud.set_outcome("+15550000003", "no-answer")
    retry = {"maxAttempts": 2, "on": ["no_answer"], "backoffSeconds": 0}
    task = _create(server, agent_id, "+15550000003", retry=retry, ringTimeoutSeconds=5)
    done = _wait(server, task["id"], "no_answer", "completed", "failed", timeout=40)
    assert done["status"] == "no_answer"
    assert [a["status"] for a in done["attempts"]] == ["no_answer", "no_answer"]
    assert done["endedReason"] == "no_answer"


def test_voicemail_is_left_after_the_beep_then_hung_up(
    server: RunningServer, agent_id: str, cloud: CloudThread
) -> None:
    cloud.cloud.set_outcome("+15550000004", "voicemail")
    task = _create(
        server,
        agent_id,
        "+15550000004",
        machineDetection="leave_message",
        voicemailMessage=VOICEMAIL,
    )
    done = _wait(server, task["id"], "voicemail", "completed", "failed")
    assert done["status"] == "voicemail", done
    (attempt,) = done["attempts"]
    assert attempt["answeredBy"].startswith("machine_end")
    transcript = _transcript(server, attempt["sessionId"])
    agent_lines = [item["text"] for item in transcript if item["role"] == "agent"]
    assert agent_lines[-1] == VOICEMAIL
    session = _get(server, f"/v1/sessions/{attempt['sessionId']}")
    assert session["endReason"] == "voicemail"
    call = cloud.cloud.calls[attempt["callSid"]]
    assert call.request.machine_detection == "DetectMessageEnd" and call.request.async_amd


def test_a_machine_is_hung_up_on(server: RunningServer, agent_id: str, cloud: CloudThread) -> None:
    cloud.cloud.set_outcome("+15550000005", "voicemail")
    task = _create(server, agent_id, "+15550000005", machineDetection="hang_up")
    done = _wait(server, task["id"], "voicemail", "completed", "failed")
    assert done["status"] == "voicemail", done
    (attempt,) = done["attempts"]
    assert attempt["answeredBy"] == "machine_start"
    call = cloud.cloud.calls[attempt["callSid"]]
    # Hung up during the machine's greeting, long before it would have recorded anything.
    assert call.end_time is not None and call.answer_time is not None
    assert (call.end_time - call.answer_time).total_seconds() < 5


def test_cancel_while_ringing_hangs_up(
    server: RunningServer, agent_id: str, cloud: CloudThread
) -> None:
    cloud.cloud.set_outcome("+15550000006", "no-answer")
    task = _create(server, agent_id, "+15550000006", ringTimeoutSeconds=60)
    _wait(server, task["id"], "ringing")
    with server.client() as client:
        canceled = client.post(f"/v1/tasks/{task['id']}/cancel").json()
    assert canceled["status"] == "canceled"
    sid = canceled["attempts"][0]["callSid"]
    call = cloud.run(lambda: cloud.cloud.wait_ended(sid, timeout=10))
    assert call.status in ("canceled", "completed")
    deadline = time.monotonic() + 10
    while _get(server, f"/v1/tasks/{task['id']}")["attempts"][0]["status"] != "canceled":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert _get(server, f"/v1/tasks/{task['id']}")["status"] == "canceled"


def test_forged_callbacks_are_refused_and_change_nothing(
    server: RunningServer, agent_id: str, cloud: CloudThread
) -> None:
    task = _create(server, agent_id, "+15550000007", scheduledAt="2099-01-01T00:00:00Z")
    params = {"CallSid": "CA" + "1" * 32, "CallStatus": "completed", "SequenceNumber": "3"}
    for path in ("status", "connect"):
        url = f"{server.base_url}/v1/sessions/twilio/task/{task['id']}/{path}"
        forged = RequestValidator("not-the-token").compute_signature(url, params)
        response = httpx.post(url, data=params, headers={"X-Twilio-Signature": forged})
        assert response.status_code == 403
        assert httpx.post(url, data=params).status_code == 403
    unknown = f"{server.base_url}/v1/sessions/twilio/task/task_01jd000000000000000000000x/status"
    signature = RequestValidator(cloud.cloud.auth_token).compute_signature(unknown, params)
    response = httpx.post(unknown, data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 404
    after = _get(server, f"/v1/tasks/{task['id']}")
    assert after["status"] == "waiting" and after["attempts"] == []
