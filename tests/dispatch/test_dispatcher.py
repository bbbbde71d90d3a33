from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import select, update

from tests.dispatch.conftest import dispatch_settings, end_open_tasks
from tests.dispatch.fake_calls import FakeCalls
from voxline.dispatch.dispatcher import Dispatcher
from voxline.observability.metrics import REGISTRY
from voxline.store import tasks as task_store
from voxline.store.database import Database
from voxline.store.models import AgentRow, TaskAttemptRow, TaskRow, WebhookOutboxRow, Workspace
from voxline.store.task_state import AttemptStatus
from voxline.store.types import utcnow


async def _tasks(
    database: Database,
    agent: AgentRow,
    count: int = 1,
    *,
    batch_cap: int | None = None,
    options: task_store.TaskOptions | None = None,
) -> list[str]:
    async with database.transaction() as db:
        batch_id = None
        if batch_cap is not None:
            batch = await task_store.create_batch(
                db,
                workspace_id=agent.workspace_id,
                agent_id=agent.id,
                from_number="+14155550100",
                max_concurrency=batch_cap,
            )
            batch_id = batch.id
        rows = await task_store.create_tasks(
            db,
            workspace_id=agent.workspace_id,
            agent_id=agent.id,
            from_number="+14155550100",
            tasks=[task_store.NewTask(f"+1415556{n:04d}") for n in range(count)],
            options=options or task_store.TaskOptions(),
            batch_id=batch_id,
        )
        return [row.id for row in rows]


async def _task(database: Database, task_id: str) -> tuple[TaskRow, list[TaskAttemptRow]]:
    async with database.transaction() as db:
        task = await task_store.get_task(db, task_id)
        attempts = (await task_store.attempts_of(db, [task_id]))[task_id]
    return task, attempts


async def test_a_due_task_is_dialed_once_with_twilios_parameters(
    database: Database, agent: AgentRow, dispatcher: Dispatcher, fake: FakeCalls
) -> None:
    options = task_store.TaskOptions(
        machine_detection="leave_message", voicemail_message="Hi", ring_timeout_seconds=20
    )
    (task_id,) = await _tasks(database, agent, options=options)
    claims = await dispatcher.run_once()
    await dispatcher.wait_for_creates()
    assert [claim.task_id for claim in claims] == [task_id]
    assert await dispatcher.run_once() == []
    (form,) = fake.creates
    values = dict(form)
    base = f"https://voice.example.com/v1/sessions/twilio/task/{task_id}"
    assert values["Url"] == f"{base}/connect"
    assert values["StatusCallback"] == values["AsyncAmdStatusCallback"] == f"{base}/status"
    assert [v for k, v in form if k == "StatusCallbackEvent"] == [
        "initiated",
        "ringing",
        "answered",
        "completed",
    ]
    assert values["MachineDetection"] == "DetectMessageEnd"
    assert values["AsyncAmd"] == "true"
    assert values["Timeout"] == "20"
    task, (attempt,) = await _task(database, task_id)
    assert task.status == "dialing" and task.attempt_count == 1
    assert attempt.call_sid in fake.calls and attempt.lease_expires_at is None


async def test_a_throttled_create_spends_no_attempt(
    database: Database, agent: AgentRow, dispatcher: Dispatcher, fake: FakeCalls
) -> None:
    (task_id,) = await _tasks(database, agent)
    fake.errors["+14155560000"] = [(429, 20429, "Too Many Requests")]
    await dispatcher.run_once()
    await dispatcher.wait_for_creates()
    task, attempts = await _task(database, task_id)
    assert task.status == "waiting" and task.attempt_count == 0 and attempts == []
    assert task.next_attempt_at is not None and task.next_attempt_at > utcnow()


async def test_a_refused_number_fails_the_task_with_twilios_code(
    database: Database, agent: AgentRow, dispatcher: Dispatcher, fake: FakeCalls
) -> None:
    options = task_store.TaskOptions(
        max_attempts=3, retry_on=frozenset({AttemptStatus.FAILED}), backoff_seconds=0
    )
    (task_id,) = await _tasks(database, agent, options=options)
    fake.errors["+14155560000"] = [(400, 21211, "Invalid 'To' Phone Number")]
    await dispatcher.run_once()
    await dispatcher.wait_for_creates()
    task, (attempt,) = await _task(database, task_id)
    assert task.status == "failed"
    assert task.ended_reason == "twilio_21211: Invalid 'To' Phone Number"
    assert attempt.status == "failed" and attempt.error_code == 21211
    async with database.transaction() as db:
        events = (
            await db.scalars(
                select(WebhookOutboxRow.event_type).where(WebhookOutboxRow.subject_id == task_id)
            )
        ).all()
    assert sorted(events) == ["task.attempt.ended", "task.ended"]


async def test_a_lost_answer_is_reconciled_not_redialed(
    database: Database, agent: AgentRow, dispatcher: Dispatcher, fake: FakeCalls
) -> None:
    (task_id,) = await _tasks(database, agent)
    fake.swallow_answers = True
    await dispatcher.run_once()
    await dispatcher.wait_for_creates()
    fake.swallow_answers = False
    await dispatcher.run_once()
    await dispatcher.wait_for_creates()
    assert len(fake.creates) == 1
    task, (attempt,) = await _task(database, task_id)
    (call,) = fake.calls.values()
    assert attempt.call_sid == call.sid and task.status == "dialing"


async def test_an_attempt_orphaned_before_its_create_is_dialed_again(
    database: Database, agent: AgentRow, dispatcher: Dispatcher, fake: FakeCalls
) -> None:
    (task_id,) = await _tasks(database, agent)
    async with database.transaction() as db:
        # A process claimed the task, wrote the attempt, and died before the REST call.
        task = await task_store.get_task(db, task_id, for_update=True)
        db.add(task_store.new_attempt(task, owner="dead", lease_until=utcnow() - timedelta(1)))
        task.attempt_count = 1
        task_store.set_task_status(task, task_store.TaskStatus.DIALING)
    await dispatcher.run_once()  # reconciles: Twilio has no such call
    task_row, attempts = await _task(database, task_id)
    assert task_row.status == "waiting" and attempts == []
    async with database.transaction() as db:  # its short backoff has passed
        await db.execute(
            update(TaskRow).where(TaskRow.id == task_id).values(next_attempt_at=utcnow())
        )
    await dispatcher.run_once()
    await dispatcher.wait_for_creates()
    assert len(fake.creates) == 1
    _task_row, (attempt,) = await _task(database, task_id)
    assert attempt.number == 1 and attempt.call_sid is not None


async def test_an_orphan_whose_call_exists_adopts_it(
    database: Database, agent: AgentRow, dispatcher: Dispatcher, fake: FakeCalls
) -> None:
    (task_id,) = await _tasks(database, agent)
    async with database.transaction() as db:
        task = await task_store.get_task(db, task_id, for_update=True)
        db.add(task_store.new_attempt(task, owner="dead", lease_until=utcnow() - timedelta(1)))
        task.attempt_count = 1
        task_store.set_task_status(task, task_store.TaskStatus.DIALING)
    call = fake.add_call("+14155560000", "+14155550100", "in-progress")
    await dispatcher.run_once()
    await dispatcher.wait_for_creates()
    assert fake.creates == []
    task_row, (attempt,) = await _task(database, task_id)
    assert attempt.call_sid == call.sid
    assert attempt.status == "in_progress" and task_row.status == "in_progress"


async def test_workspace_and_batch_caps_limit_live_calls(
    database: Database,
    agent: AgentRow,
    workspace: Workspace,
    dispatcher: Dispatcher,
    fake: FakeCalls,
) -> None:
    async with database.transaction() as db:
        await db.execute(
            update(Workspace).where(Workspace.id == workspace.id).values(max_concurrent_calls=3)
        )
    await _tasks(database, agent, 4, batch_cap=2)
    await _tasks(database, agent, 4)
    await dispatcher.run_once()
    await dispatcher.run_once()
    await dispatcher.wait_for_creates()
    assert len(fake.creates) == 3
    async with database.transaction() as db:
        batch_live = (
            await db.scalars(select(TaskAttemptRow).where(TaskAttemptRow.batch_id.is_not(None)))
        ).all()
    assert len(batch_live) <= 2


async def test_creates_are_paced_at_the_accounts_rate(
    database: Database, agent: AgentRow, dispatcher: Dispatcher, fake: FakeCalls
) -> None:
    await _tasks(database, agent, 5)
    claims = await dispatcher.run_once()
    await dispatcher.wait_for_creates()
    assert len(claims) == 5
    times = sorted(fake.create_times)
    # Slots 11 ms apart (100 calls per second, with room for a create leaving up to 0.1 s
    # after its slot); a create may leave late by its transaction, eating into the next gap.
    # Unpaced, the five would leave within a few milliseconds.
    assert times[-1] - times[0] >= 2 * 0.011


async def test_a_task_outside_its_window_waits_for_the_opening(
    database: Database, agent: AgentRow, dispatcher: Dispatcher, fake: FakeCalls
) -> None:
    from voxline.dispatch.windows import CallingWindow

    now = utcnow()
    closed_hour = (now + timedelta(hours=2)).strftime("%H:00")
    end_hour = (now + timedelta(hours=3)).strftime("%H:00")
    window = CallingWindow.parse(
        "UTC", ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], closed_hour, end_hour
    )
    (task_id,) = await _tasks(
        database, agent, options=task_store.TaskOptions(calling_window=window)
    )
    async with database.transaction() as db:
        # Due now (e.g. a retry's backoff ended), but the window is closed.
        await db.execute(update(TaskRow).where(TaskRow.id == task_id).values(next_attempt_at=now))
    assert await dispatcher.run_once() == []
    task, _ = await _task(database, task_id)
    assert task.next_attempt_at == window.next_opening(now)
    assert task.next_attempt_at is not None and task.next_attempt_at > now


async def test_a_twilio_error_is_retried_with_backoff_without_spending_an_attempt(
    database: Database, agent: AgentRow, dispatcher: Dispatcher, fake: FakeCalls
) -> None:
    (task_id,) = await _tasks(database, agent)
    fake.errors["+14155560000"] = [(503, 20503, "Service Unavailable")]
    await dispatcher.run_once()
    await dispatcher.wait_for_creates()
    task, attempts = await _task(database, task_id)
    # Reconciled at once: Twilio has no such call, so the task waits to be dialed again.
    assert task.status == "waiting" and task.attempt_count == 0 and attempts == []
    assert task.next_attempt_at is not None and task.next_attempt_at > utcnow()
    assert len(fake.creates) == 1


def _creates(outcome: str) -> float:
    return REGISTRY.get_sample_value("voxline_dispatch_creates_total", {"outcome": outcome}) or 0


async def test_each_creates_outcome_is_counted(
    database: Database, agent: AgentRow, dispatcher: Dispatcher, fake: FakeCalls
) -> None:
    outcomes = ("created", "throttled", "refused", "failed", "timed_out")
    before = {outcome: _creates(outcome) for outcome in outcomes}
    await _tasks(database, agent, count=4)
    fake.errors["+14155560001"] = [(429, 20429, "Too Many Requests")]
    fake.errors["+14155560002"] = [(400, 21211, "Invalid 'To' Phone Number")]
    fake.errors["+14155560003"] = [(503, 20503, "Service Unavailable")]
    await dispatcher.run_once()
    await dispatcher.wait_for_creates()
    counted = {outcome: _creates(outcome) - before[outcome] for outcome in outcomes}
    assert counted == {"created": 1, "throttled": 1, "refused": 1, "failed": 1, "timed_out": 0}
    assert REGISTRY.get_sample_value("voxline_dispatch_queue_depth") == 0


async def test_a_draining_process_claims_no_new_task_and_still_reports_the_queue(
    database: Database, agent: AgentRow, fake: FakeCalls, tmp_path: Path
) -> None:
    await end_open_tasks(database)
    (task_id,) = await _tasks(database, agent)
    draining = asyncio.Event()
    draining.set()
    settings = dispatch_settings(tmp_path, twilio_account_sid="AC" + uuid.uuid4().hex)
    hooks = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(204)))
    dispatcher = Dispatcher(settings, database, fake.client(), hooks, draining=draining)
    try:
        assert await dispatcher.run_once() == []
        assert fake.creates == []
        task, _ = await _task(database, task_id)
        assert task.status == "waiting"
        assert REGISTRY.get_sample_value("voxline_dispatch_queue_depth") == 1
    finally:
        await end_open_tasks(database)
        await dispatcher.aclose()
        await hooks.aclose()
