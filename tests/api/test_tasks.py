from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.api.conftest import Tenant
from voxline.agent_spec import AgentSpec, ScriptedLlm
from voxline.app_state import AppState
from voxline.store.agents import create_agent


@pytest.fixture
async def agent_id(app: FastAPI, tenant: Tenant) -> str:
    state: AppState = app.state.voxline
    async with state.database.transaction() as db:
        row = await create_agent(db, tenant.workspace_id, AgentSpec(name="Out", llm=ScriptedLlm()))
    return row.id


def _task(agent_id: str, **extra: Any) -> dict[str, Any]:
    return {"agentId": agent_id, "to": "+14155550101", "from": "+14155550100", **extra}


async def test_create_returns_a_waiting_task_with_defaults(
    client: httpx.AsyncClient, agent_id: str
) -> None:
    response = await client.post("/v1/tasks", json=_task(agent_id, metadata={"order": 7}))
    assert response.status_code == 201, response.text
    task = response.json()
    assert task["id"].startswith("task_")
    assert task["status"] == "waiting"
    assert task["to"] == "+14155550101" and task["from"] == "+14155550100"
    assert task["retry"] == {"maxAttempts": 1, "on": [], "backoffSeconds": 600}
    assert task["machineDetection"] == "off" and task["ringTimeoutSeconds"] == 30
    assert task["metadata"] == {"order": 7}
    assert task["attempts"] == [] and task["endedReason"] is None
    assert task["nextAttemptAt"] == task["scheduledAt"]


async def test_a_window_sets_the_first_attempt_at_its_opening(
    client: httpx.AsyncClient, agent_id: str
) -> None:
    body = _task(
        agent_id,
        scheduledAt="2026-03-07T12:00:00Z",  # a Saturday
        callingWindow={
            "timezone": "America/New_York",
            "days": ["mon"],
            "start": "09:00",
            "end": "17:00",
        },
    )
    task = (await client.post("/v1/tasks", json=body)).json()
    assert task["nextAttemptAt"].startswith("2026-03-09T13:00:00")
    assert task["callingWindow"]["timezone"] == "America/New_York"


async def test_idempotency_key_returns_the_first_task(
    client: httpx.AsyncClient, agent_id: str
) -> None:
    headers = {"Idempotency-Key": "abc-1"}
    first = await client.post("/v1/tasks", json=_task(agent_id), headers=headers)
    again = await client.post("/v1/tasks", json=_task(agent_id), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    listed = (await client.get("/v1/tasks")).json()["data"]
    assert [task["id"] for task in listed] == [first.json()["id"]]
    other = await client.post("/v1/tasks", json=_task(agent_id, to="+14155550199"), headers=headers)
    assert other.status_code == 409
    assert other.json()["error"]["param"] == "Idempotency-Key"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"to": "4155550101"}, "to"),
        ({"retry": {"maxAttempts": 11}}, "retry.maxAttempts"),
        ({"retry": {"on": ["completed"]}}, "retry.on.0"),
        ({"machineDetection": "leave_message"}, None),
        ({"ringTimeoutSeconds": 1}, "ringTimeoutSeconds"),
        ({"scheduledAt": "2026-03-07T12:00:00"}, "scheduledAt"),
        (
            {"callingWindow": {"timezone": "Nowhere/City", "start": "09:00", "end": "17:00"}},
            "callingWindow",
        ),
    ],
)
async def test_invalid_tasks_are_refused(
    client: httpx.AsyncClient, agent_id: str, extra: dict[str, Any], param: str | None
) -> None:
    response = await client.post("/v1/tasks", json=_task(agent_id, **extra))
    assert response.status_code == 422, response.text
    if param is not None:
        assert response.json()["error"]["param"] == param


async def test_unknown_agent_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/tasks", json=_task("agent_01jd000000000000000000000x"))
    assert response.status_code == 404
    assert response.json()["error"]["param"] == "agentId"


async def test_other_workspace_cannot_see_a_task(
    client: httpx.AsyncClient, other_tenant: Tenant, agent_id: str
) -> None:
    task = (await client.post("/v1/tasks", json=_task(agent_id))).json()
    assert (await other_tenant.client.get(f"/v1/tasks/{task['id']}")).status_code == 404
    assert (await other_tenant.client.post(f"/v1/tasks/{task['id']}/cancel")).status_code == 404


async def test_cancel_a_waiting_task(client: httpx.AsyncClient, agent_id: str) -> None:
    task = (await client.post("/v1/tasks", json=_task(agent_id))).json()
    canceled = await client.post(f"/v1/tasks/{task['id']}/cancel")
    assert canceled.status_code == 200
    assert canceled.json()["status"] == "canceled"
    assert canceled.json()["endedReason"] == "canceled"
    assert canceled.json()["nextAttemptAt"] is None
    again = await client.post(f"/v1/tasks/{task['id']}/cancel")
    assert again.json()["status"] == "canceled"


async def test_list_filters_and_pages(client: httpx.AsyncClient, agent_id: str) -> None:
    ids = [(await client.post("/v1/tasks", json=_task(agent_id))).json()["id"] for _ in range(3)]
    await client.post(f"/v1/tasks/{ids[0]}/cancel")
    page = (await client.get("/v1/tasks", params={"limit": 2})).json()
    assert [task["id"] for task in page["data"]] == ids[:0:-1]
    assert page["hasMore"] is True
    rest = (await client.get("/v1/tasks", params={"after": page["nextCursor"]})).json()
    assert [task["id"] for task in rest["data"]] == [ids[0]]
    waiting = (await client.get("/v1/tasks", params={"status": "waiting"})).json()["data"]
    assert {task["id"] for task in waiting} == set(ids[1:])
    by_agent = (await client.get("/v1/tasks", params={"agentId": "agent_other"})).json()
    assert by_agent["data"] == []
    bad = await client.get("/v1/tasks", params={"after": "sess_x"})
    assert bad.status_code == 400


async def test_batch_create_counts_and_cancel(client: httpx.AsyncClient, agent_id: str) -> None:
    body = {
        "agentId": agent_id,
        "from": "+14155550100",
        "maxConcurrency": 2,
        "retry": {"maxAttempts": 2, "on": ["busy"], "backoffSeconds": 60},
        "tasks": [{"to": f"+1415555{n:04d}", "metadata": {"row": n}} for n in range(5)],
    }
    response = await client.post("/v1/batches", json=body, headers={"Idempotency-Key": "b1"})
    assert response.status_code == 201, response.text
    batch = response.json()
    assert batch["id"].startswith("batch_")
    assert batch["total"] == 5 and batch["counts"]["waiting"] == 5
    assert batch["maxConcurrency"] == 2
    again = await client.post("/v1/batches", json=body, headers={"Idempotency-Key": "b1"})
    assert again.json()["id"] == batch["id"]
    tasks = (await client.get("/v1/tasks", params={"batchId": batch["id"]})).json()["data"]
    assert len(tasks) == 5
    assert {task["retry"]["maxAttempts"] for task in tasks} == {2}
    canceled = (await client.post(f"/v1/batches/{batch['id']}/cancel")).json()
    assert canceled["counts"]["canceled"] == 5 and canceled["counts"]["waiting"] == 0
    assert canceled["canceledAt"] is not None
    assert (await client.get(f"/v1/batches/{batch['id']}")).json()["total"] == 5


async def test_batch_size_is_capped(client: httpx.AsyncClient, agent_id: str) -> None:
    body = {
        "agentId": agent_id,
        "from": "+14155550100",
        "tasks": [{"to": "+14155550101"}] * 10_001,
    }
    response = await client.post("/v1/batches", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "tasks"


async def test_openapi_describes_tasks_as_they_are_returned(anonymous: httpx.AsyncClient) -> None:
    schema = (await anonymous.get("/openapi.json")).json()
    task = schema["components"]["schemas"]["Task"]["properties"]
    assert {"to", "from", "nextAttemptAt", "endedReason", "attempts", "metadata"} <= set(task)
    attempt = schema["components"]["schemas"]["TaskAttempt"]["properties"]
    assert {"callSid", "answeredBy", "sipResponseCode", "sessionId", "durationSeconds"} <= set(
        attempt
    )
    create = schema["paths"]["/v1/tasks"]["post"]
    assert "201" in create["responses"]
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
