"""The webhook outbox: signed deliveries, retries with backoff, nothing lost across a restart."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from voxline.dispatch.delivery import TASK_HEADER, deliver_due
from voxline.security import egress
from voxline.security.egress import EgressPolicy
from voxline.store import outbox
from voxline.store.database import Database
from voxline.store.models import WebhookOutboxRow, Workspace
from voxline.tools.signing import SIGNATURE_HEADER, verify_signature

# Opens loopback to the egress policy: the receivers here answer for 127.0.0.1.
pytestmark = pytest.mark.usefixtures("loopback_egress")


async def _queue(database: Database, workspace: Workspace) -> str:
    subject = f"task_{uuid.uuid4().hex[:26]}"
    body = json.dumps({"type": "task.ended", "data": {"task": {"id": subject}}})
    async with database.transaction() as db:
        # Earlier tests' rows are due too: they are delivered as well, never in the way.
        await outbox.enqueue(
            db,
            workspace_id=workspace.id,
            url="http://127.0.0.1:9/hooks",
            event_type="task.ended",
            subject_id=subject,
            body=body,
        )
    return subject


async def _row(database: Database, subject: str) -> WebhookOutboxRow:
    async with database.transaction() as db:
        rows = await db.scalars(
            select(WebhookOutboxRow).where(WebhookOutboxRow.subject_id == subject)
        )
        return rows.one()


async def test_a_queued_event_is_delivered_signed(database: Database, workspace: Workspace) -> None:
    subject = await _queue(database, workspace)
    received: list[httpx.Request] = []

    def receive(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(204)

    async with httpx.AsyncClient(transport=httpx.MockTransport(receive)) as http:
        await deliver_due(database, http)
    mine = [r for r in received if r.headers[TASK_HEADER] == subject]
    assert len(mine) == 1
    request = mine[0]
    assert verify_signature(
        workspace.webhook_secret.encode(), request.headers[SIGNATURE_HEADER], request.content
    )
    assert json.loads(request.content)["type"] == "task.ended"
    row = await _row(database, subject)
    assert row.status == "delivered" and row.attempts == 1


async def test_failures_are_retried_later_then_delivered(
    database: Database, workspace: Workspace
) -> None:
    subject = await _queue(database, workspace)
    answers = iter([503, 204])

    def receive(request: httpx.Request) -> httpx.Response:
        if request.headers[TASK_HEADER] != subject:
            return httpx.Response(204)
        return httpx.Response(next(answers))

    async with httpx.AsyncClient(transport=httpx.MockTransport(receive)) as http:
        await deliver_due(database, http, first_backoff=timedelta(seconds=30))
        failed = await _row(database, subject)
        assert failed.status == "pending" and failed.attempts == 1
        assert failed.last_error == "status 503"
        await deliver_due(database, http)  # not due yet: nothing sent
        assert (await _row(database, subject)).attempts == 1
        # A restarted process finds the row in the store once it is due.
        async with database.transaction() as db:
            await db.execute(
                update(WebhookOutboxRow)
                .where(WebhookOutboxRow.subject_id == subject)
                .values(next_attempt_at=failed.created_at)
            )
        await deliver_due(database, http)
    row = await _row(database, subject)
    assert row.status == "delivered" and row.attempts == 2


async def test_a_receiver_that_never_answers_is_given_up_on(
    database: Database, workspace: Workspace
) -> None:
    subject = await _queue(database, workspace)

    def receive(request: httpx.Request) -> httpx.Response:
        if request.headers[TASK_HEADER] != subject:
            return httpx.Response(204)
        raise httpx.ConnectError("refused")

    async with httpx.AsyncClient(transport=httpx.MockTransport(receive)) as http:
        for _ in range(outbox.MAX_DELIVERY_ATTEMPTS):
            await deliver_due(database, http, first_backoff=timedelta(0))
    row = await _row(database, subject)
    assert row.status == "failed" and row.attempts == outbox.MAX_DELIVERY_ATTEMPTS
    assert row.last_error == "ConnectError"


async def test_a_url_the_egress_policy_refuses_fails_at_once(
    database: Database, workspace: Workspace
) -> None:
    subject = await _queue(database, workspace)
    previous = egress.install(EgressPolicy())
    try:
        http = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(204)))
        async with http:
            await deliver_due(database, http)
    finally:
        egress.install(previous)
    row = await _row(database, subject)
    assert row.status == "failed"
    assert row.last_error is not None and "egress policy" in row.last_error
