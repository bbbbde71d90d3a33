"""Twilio's task callbacks against the app: signatures, ordering, duplicates, /connect."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from voxline.agent_spec import AgentSpec, ScriptedLlm
from voxline.api.app import create_app
from voxline.app_state import AppState
from voxline.config import Settings
from voxline.dispatch.views import task_view
from voxline.store import dispatch_queue
from voxline.store import tasks as task_store
from voxline.store.agents import create_agent
from voxline.store.models import SessionRow, TaskAttemptRow, WebhookOutboxRow
from voxline.store.types import utcnow
from voxline.store.workspaces import create_workspace

TOKEN = "callback-token"
BASE = "http://test"


@pytest.fixture
async def app(database_url: str, tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        database_url=database_url,
        seed_demo_agent=False,
        preload_models=False,
        dispatcher_enabled=False,
        public_base_url=BASE,
        twilio_auth_token=TOKEN,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def twilio(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        yield client


async def _dialed_task(app: FastAPI, **options: Any) -> str:
    """A task whose first call was created at Twilio as CALL_SID (with a fresh SID each test)."""
    state: AppState = app.state.voxline
    async with state.database.transaction() as db:
        workspace = await create_workspace(db, f"ws-{uuid.uuid4().hex[:10]}")
        spec = AgentSpec(name="Out", llm=ScriptedLlm(), webhook_url="http://127.0.0.1:9/hooks")
        agent = await create_agent(db, workspace.id, spec)
        (task,) = await task_store.create_tasks(
            db,
            workspace_id=workspace.id,
            agent_id=agent.id,
            from_number="+14155550100",
            tasks=[task_store.NewTask("+14155550101")],
            options=task_store.TaskOptions(**options),
        )
        task_id = task.id
    async with state.database.transaction() as db:
        claims = await dispatch_queue.claim_due(
            db,
            owner="test",
            account="AC" + uuid.uuid4().hex,
            calls_per_second=1000,
            horizon=timedelta(seconds=1),
            lease=timedelta(seconds=30),
            now=utcnow(),
        )
        assert task_id in [claim.task_id for claim in claims]
        attempt = await db.get_one(TaskAttemptRow, (task_id, 1))
        attempt.call_sid = _sid(task_id)
    return task_id


def _sid(task_id: str) -> str:
    return "CA" + uuid.uuid5(uuid.NAMESPACE_URL, task_id).hex


async def _post(
    client: httpx.AsyncClient,
    task_id: str,
    path: str,
    params: dict[str, str],
    *,
    token: str = TOKEN,
) -> httpx.Response:
    url = f"{BASE}/v1/sessions/twilio/task/{task_id}/{path}"
    signature = RequestValidator(token).compute_signature(url, params)
    return await client.post(url, data=params, headers={"X-Twilio-Signature": signature})


def _status(task_id: str, status: str, sequence: int, **extra: str) -> dict[str, str]:
    return {
        "CallSid": _sid(task_id),
        "CallStatus": status,
        "SequenceNumber": str(sequence),
        **extra,
    }


async def _task(client: httpx.AsyncClient, app: FastAPI, task_id: str) -> dict[str, Any]:
    state: AppState = app.state.voxline
    async with state.database.transaction() as db:
        task = await task_store.get_task(db, task_id)
        attempts = (await task_store.attempts_of(db, [task_id]))[task_id]
    return task_view(task, attempts).model_dump(mode="json", by_alias=True)


async def test_callbacks_move_the_task_forward(app: FastAPI, twilio: httpx.AsyncClient) -> None:
    task_id = await _dialed_task(app)
    assert (
        await _post(twilio, task_id, "status", _status(task_id, "initiated", 0))
    ).status_code == 204
    await _post(twilio, task_id, "status", _status(task_id, "ringing", 1))
    assert (await _task(twilio, app, task_id))["status"] == "ringing"
    await _post(twilio, task_id, "status", _status(task_id, "in-progress", 2))
    await _post(twilio, task_id, "status", _status(task_id, "ringing", 1))  # late
    task = await _task(twilio, app, task_id)
    assert task["status"] == "in_progress" and task["attempts"][0]["status"] == "in_progress"
    final = _status(task_id, "completed", 3, CallDuration="42", SipResponseCode="200")
    await _post(twilio, task_id, "status", final)
    task = await _task(twilio, app, task_id)
    assert task["status"] == "completed" and task["endedReason"] == "completed"
    assert task["attempts"][0]["durationSeconds"] == 42
    assert task["attempts"][0]["sipResponseCode"] == 200


async def test_a_final_status_before_the_others_wins(
    app: FastAPI, twilio: httpx.AsyncClient
) -> None:
    task_id = await _dialed_task(app)
    await _post(twilio, task_id, "status", _status(task_id, "busy", 2))
    for status, sequence in (("ringing", 1), ("initiated", 0), ("in-progress", 5)):
        assert (
            await _post(twilio, task_id, "status", _status(task_id, status, sequence))
        ).status_code == 204
    task = await _task(twilio, app, task_id)
    assert task["status"] == "busy"
    assert [a["status"] for a in task["attempts"]] == ["busy"]


async def test_duplicates_are_applied_once(app: FastAPI, twilio: httpx.AsyncClient) -> None:
    task_id = await _dialed_task(
        app,
        max_attempts=3,
        retry_on=frozenset({task_store.AttemptStatus.NO_ANSWER}),
        backoff_seconds=60,
    )
    for _ in range(3):
        await _post(twilio, task_id, "status", _status(task_id, "no-answer", 2))
    task = await _task(twilio, app, task_id)
    assert task["status"] == "waiting" and task["nextAttemptAt"] is not None
    state: AppState = app.state.voxline
    async with state.database.transaction() as db:
        events = await db.scalar(select(func.count()).where(WebhookOutboxRow.subject_id == task_id))
    assert events == 1  # one task.attempt.ended, no task.ended: it will call again


async def test_connect_creates_the_outbound_session_and_its_stream(
    app: FastAPI, twilio: httpx.AsyncClient
) -> None:
    task_id = await _dialed_task(app)
    params = {"CallSid": _sid(task_id), "CallStatus": "in-progress", "Direction": "outbound-api"}
    response = await _post(twilio, task_id, "connect", params)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert '<Connect><Stream url="ws://test/v1/sessions/twilio/stream">' in response.text
    assert '<Parameter name="relay"' in response.text
    again = await _post(twilio, task_id, "connect", params)
    assert again.status_code == 200
    task = await _task(twilio, app, task_id)
    assert task["status"] == "in_progress"
    session_id = task["attempts"][0]["sessionId"]
    state: AppState = app.state.voxline
    async with state.database.transaction() as db:
        sessions = (
            await db.scalars(select(SessionRow).where(SessionRow.call_sid == _sid(task_id)))
        ).all()
    assert [row.id for row in sessions] == [session_id]
    assert sessions[0].direction == "outbound" and sessions[0].to_number == "+14155550101"


async def test_connect_for_an_ended_task_hangs_up(app: FastAPI, twilio: httpx.AsyncClient) -> None:
    task_id = await _dialed_task(app)
    await _post(twilio, task_id, "status", _status(task_id, "failed", 1))
    response = await _post(twilio, task_id, "connect", {"CallSid": _sid(task_id)})
    assert response.status_code == 200 and "<Hangup />" in response.text


async def test_bad_signatures_change_nothing(app: FastAPI, twilio: httpx.AsyncClient) -> None:
    task_id = await _dialed_task(app)
    for path in ("status", "connect"):
        response = await _post(
            twilio, task_id, path, _status(task_id, "completed", 9), token="forged"
        )
        assert response.status_code == 403
    task = await _task(twilio, app, task_id)
    assert task["status"] == "dialing" and task["attempts"][0]["sessionId"] is None


async def test_unknown_task_is_404(twilio: httpx.AsyncClient) -> None:
    response = await _post(
        twilio, "task_01jd000000000000000000000x", "status", {"CallSid": "CA" + "a" * 32}
    )
    assert response.status_code == 404
