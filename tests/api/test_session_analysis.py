"""The analysis on GET /v1/sessions/{id}, and the agent's analysis section checked on save."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.api.conftest import Tenant, assert_error, make_settings
from voxline.agent_spec import CallAnalysis, ScriptedLlm
from voxline.api.app import create_app
from voxline.app_state import AppState
from voxline.store import analyses as jobs
from voxline.store.analyses import enqueue_analysis
from voxline.store.session_state import Channel, Direction
from voxline.store.sessions import create_session

SCHEMA = {"type": "object", "properties": {"booked": {"type": "boolean"}}}


@pytest.fixture
async def app(database_url: str, tmp_path: Path) -> AsyncIterator[FastAPI]:
    """The API without an analysis worker: these tests move the jobs themselves."""
    settings = make_settings(database_url, tmp_path).model_copy(update={"analysis_workers": 0})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


async def _session(app: FastAPI, tenant: Tenant, analysed: bool) -> str:
    response = await tenant.client.post(
        "/v1/agents",
        json={"name": "Dental", "analysis": {"dataSchema": SCHEMA}} if analysed else {"name": "x"},
    )
    assert response.status_code == 201, response.text
    agent_id = response.json()["id"]
    state: AppState = app.state.voxline
    async with state.database.transaction() as db:
        row = await create_session(
            db,
            workspace_id=tenant.workspace_id,
            agent_id=agent_id,
            channel=Channel.PHONE,
            direction=Direction.INBOUND,
        )
        if analysed:
            spec = CallAnalysis(data_schema=SCHEMA, llm=ScriptedLlm())
            await enqueue_analysis(
                db,
                session_id=row.id,
                workspace_id=tenant.workspace_id,
                instance_id=None,
                spec=spec,
                language="en",
                webhook_url=None,
            )
    return row.id


async def test_a_session_shows_its_analysis_as_it_progresses(app: FastAPI, tenant: Tenant) -> None:
    session_id = await _session(app, tenant, analysed=True)
    response = await tenant.client.get(f"/v1/sessions/{session_id}")
    assert response.status_code == 200, response.text
    assert response.json()["analysis"] == {
        "status": "pending",
        "summary": None,
        "data": None,
        "success": None,
        "error": None,
    }
    state: AppState = app.state.voxline
    async with state.database.transaction() as db:
        [job] = await jobs.claim_analyses(db, limit=1, lease=timedelta(seconds=60))
        row = await jobs.held(db, job)
        assert row is not None
        await jobs.complete(db, row, summary="Booked.", data={"booked": True}, success=None)
    analysis = (await tenant.client.get(f"/v1/sessions/{session_id}")).json()["analysis"]
    assert (analysis["status"], analysis["summary"], analysis["data"]) == (
        "done",
        "Booked.",
        {"booked": True},
    )


async def test_a_session_of_an_agent_without_analysis_shows_null(
    app: FastAPI, tenant: Tenant
) -> None:
    session_id = await _session(app, tenant, analysed=False)
    assert (await tenant.client.get(f"/v1/sessions/{session_id}")).json()["analysis"] is None


async def test_another_workspace_does_not_see_the_analysis(
    app: FastAPI, tenant: Tenant, other_tenant: Tenant
) -> None:
    session_id = await _session(app, tenant, analysed=True)
    response = await other_tenant.client.get(f"/v1/sessions/{session_id}")
    assert_error(response, 404, "not_found_error")


async def test_an_agent_with_an_invalid_data_schema_is_refused(client: httpx.AsyncClient) -> None:
    schema = {"type": "object", "properties": {"booked": {"type": "yes-or-no"}}}
    response = await client.post(
        "/v1/agents", json={"name": "x", "analysis": {"dataSchema": schema}}
    )
    assert_error(response, 422, "validation_error", "analysis.dataSchema")
    assert "properties/booked" in response.json()["error"]["message"]
