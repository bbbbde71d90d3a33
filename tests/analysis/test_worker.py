"""The worker: results and memory stored, the webhook sent, retries, and a restart."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta

from pydantic import HttpUrl
from sqlalchemy import select, update

from tests.analysis.conftest import WorkerFactory, World
from tests.analysis.fakes import ListedLlm
from tests.fakes.webhook_server import WebhookServer
from voxline.agent_spec import CallAnalysis, ScriptedLlm
from voxline.providers.base import LlmEvent, LlmRequest, ProviderError, TextDelta
from voxline.store import analyses as jobs
from voxline.store import tasks as task_store
from voxline.store.agents import agent_spec, get_agent, replace_agent_spec
from voxline.store.analyses import AnalysisStatus, SessionAnalysis, session_analysis
from voxline.store.instances import get_instance, memory_notes
from voxline.store.models import SessionAnalysisRow, WebhookOutboxRow
from voxline.store.task_state import AttemptStatus, TaskStatus
from voxline.store.types import utcnow

GOOD = json.dumps({"summary": "Booked Tuesday at nine.", "data": {"booked": True}})


async def _analysis(world: World, session_id: str) -> SessionAnalysis:
    async with world.database.transaction() as db:
        analysis = await session_analysis(db, session_id)
    assert analysis is not None
    return analysis


async def _notes(world: World, instance_id: str) -> list[str]:
    async with world.database.transaction() as db:
        return [
            note.text
            for note in memory_notes(await get_instance(db, world.workspace_id, instance_id))
        ]


async def test_a_finished_call_is_analysed_and_remembered(
    world: World, make_worker: WorkerFactory
) -> None:
    session_id = await world.finished_call()
    llm = ListedLlm([GOOD])
    assert await make_worker(llm).run_due() == 1
    analysis = await _analysis(world, session_id)
    assert analysis == SessionAnalysis(
        AnalysisStatus.DONE, "Booked Tuesday at nine.", {"booked": True}, None, None
    )
    assert await _notes(world, world.instance_id) == ["Booked Tuesday at nine."]
    assert await _notes(world, world.other_instance_id) == []
    transcript = llm.requests[0].messages[1].content
    assert "Booked you for Tuesday" in transcript and "at nine" not in transcript


async def test_the_signed_webhook_carries_the_analysis(
    world: World, make_worker: WorkerFactory
) -> None:
    async with WebhookServer(world.webhook_secret) as receiver:
        session_id = await world.finished_call(webhook_url=receiver.url("/echo"))
        await make_worker(ListedLlm([GOOD])).run_due()
        for _ in range(200):
            if receiver.received:
                break
            await asyncio.sleep(0.01)
    [delivery] = receiver.received
    assert delivery.signature_valid and delivery.session_id == session_id
    body = json.loads(delivery.body)
    assert body["type"] == "session.analyzed"
    assert body["data"] == {
        "sessionId": session_id,
        "analysis": {
            "status": "done",
            "summary": "Booked Tuesday at nine.",
            "data": {"booked": True},
            "success": None,
            "error": None,
        },
    }


async def test_no_memory_is_written_when_the_instance_turned_it_off(
    world: World, make_worker: WorkerFactory
) -> None:
    async with world.database.transaction() as db:
        instance = await get_instance(db, world.workspace_id, world.instance_id, for_update=True)
        instance.memory_enabled = False
    session_id = await world.finished_call()
    await make_worker(ListedLlm([GOOD])).run_due()
    assert (await _analysis(world, session_id)).status == AnalysisStatus.DONE
    assert await _notes(world, world.instance_id) == []


async def test_no_memory_is_written_when_the_agent_does_not_ask(
    world: World, make_worker: WorkerFactory
) -> None:
    spec = CallAnalysis(remember_summary=False, llm=ScriptedLlm())
    await world.finished_call(analysis=spec)
    await make_worker(ListedLlm(['{"summary": "Hi."}'])).run_due()
    assert await _notes(world, world.instance_id) == []


async def test_an_answer_invalid_twice_fails_for_good_with_the_reason(
    world: World, make_worker: WorkerFactory
) -> None:
    session_id = await world.finished_call()
    await make_worker(ListedLlm(["not json", '{"summary": "x"}'])).run_due()
    analysis = await _analysis(world, session_id)
    assert analysis.status == AnalysisStatus.FAILED
    assert analysis.error is not None and "'data' is a required property" in analysis.error
    assert await _notes(world, world.instance_id) == []


class _Down:
    """A model whose vendor is down."""

    name = "down"

    async def open(self) -> _Down:
        return self

    async def stream(self, request: LlmRequest) -> AsyncIterator[LlmEvent]:
        raise ProviderError("the LLM server at 127.0.0.1 answered 503")
        yield TextDelta("never")

    async def aclose(self) -> None:
        pass


async def test_a_failing_model_is_retried_then_given_up(
    world: World, make_worker: WorkerFactory
) -> None:
    session_id = await world.finished_call()
    worker = make_worker(_Down(), max_attempts=2)
    await worker.run_due()
    analysis = await _analysis(world, session_id)
    assert analysis.status == AnalysisStatus.PENDING
    assert analysis.error == "the LLM server at 127.0.0.1 answered 503"
    await worker.run_due()
    analysis = await _analysis(world, session_id)
    assert analysis.status == AnalysisStatus.FAILED
    assert analysis.error == "gave up after 2 attempts: the LLM server at 127.0.0.1 answered 503"


async def test_a_call_with_nothing_said_fails_without_asking_the_model(
    world: World, make_worker: WorkerFactory
) -> None:
    session_id = await world.finished_call([])
    llm = ListedLlm([])
    await make_worker(llm).run_due()
    analysis = await _analysis(world, session_id)
    assert (analysis.status, analysis.error) == (
        AnalysisStatus.FAILED,
        "the call has no transcript to analyse",
    )
    assert llm.requests == []


async def test_after_a_restart_a_job_whose_lease_ran_out_is_taken_up_again(
    world: World, make_worker: WorkerFactory
) -> None:
    session_id = await world.finished_call()
    # A process claimed it, then died mid-analysis: its lease runs out and is not renewed.
    async with world.database.transaction() as db:
        [dead] = await jobs.claim_analyses(db, limit=10, lease=timedelta(seconds=60))
    assert await make_worker(ListedLlm([GOOD])).run_due() == 0
    async with world.database.transaction() as db:
        await db.execute(
            update(SessionAnalysisRow)
            .where(SessionAnalysisRow.session_id == session_id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
    assert await make_worker(ListedLlm([GOOD])).run_due() == 1
    analysis = await _analysis(world, session_id)
    assert (analysis.status, analysis.data) == (AnalysisStatus.DONE, {"booked": True})
    # The dead claim, had it come back, could no longer write its result.
    async with world.database.transaction() as db:
        assert await jobs.held(db, dead) is None
        row = await db.get_one(SessionAnalysisRow, session_id)
        assert row.attempts == 2


class _Hanging:
    """A model that starts answering and never finishes."""

    name = "hanging"

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def open(self) -> _Hanging:
        return self

    async def stream(self, request: LlmRequest) -> AsyncIterator[LlmEvent]:
        yield TextDelta('{"summary": ')
        self.started.set()
        await asyncio.Event().wait()

    async def aclose(self) -> None:
        pass


async def test_a_worker_stopped_mid_analysis_hands_the_job_back(
    world: World, make_worker: WorkerFactory
) -> None:
    session_id = await world.finished_call()
    hanging = _Hanging()
    stopping = make_worker(hanging)
    stopping.start()
    await asyncio.wait_for(hanging.started.wait(), 5)
    assert (await _analysis(world, session_id)).status == AnalysisStatus.RUNNING
    await stopping.aclose()
    assert (await _analysis(world, session_id)).status == AnalysisStatus.PENDING
    assert await make_worker(ListedLlm([GOOD])).run_due() == 1
    assert (await _analysis(world, session_id)).status == AnalysisStatus.DONE
    async with world.database.transaction() as db:
        assert (await db.get_one(SessionAnalysisRow, session_id)).attempts == 1


async def test_the_running_worker_picks_up_a_queued_job_when_woken(
    world: World, make_worker: WorkerFactory
) -> None:
    worker = make_worker(ListedLlm([GOOD]), poll_interval_s=60.0)
    worker.start()
    session_id = await world.finished_call()
    worker.wake()
    for _ in range(300):
        if (await _analysis(world, session_id)).status == AnalysisStatus.DONE:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the woken worker did not run the job")


async def test_memory_past_its_budget_is_folded_by_the_model(
    world: World, make_worker: WorkerFactory
) -> None:
    for n in range(3):
        summary = json.dumps({"summary": f"Call {n}: " + "x" * 90, "data": {"booked": False}})
        await world.finished_call()
        answers = [summary] if n < 2 else [summary, "Three calls, nothing booked."]
        await make_worker(ListedLlm(answers), memory_budget_chars=250).run_due()
    notes = await _notes(world, world.instance_id)
    assert notes == ["Three calls, nothing booked.", "Call 2: " + "x" * 90]


async def test_memory_is_truncated_when_the_model_cannot_fold_it(
    world: World, make_worker: WorkerFactory
) -> None:
    summaries = [
        json.dumps({"summary": f"Call {n}: " + "x" * 90, "data": {"booked": False}})
        for n in range(3)
    ]
    llm = ListedLlm(summaries)
    for _ in range(3):
        await world.finished_call()
        await make_worker(llm, memory_budget_chars=250).run_due()
    # The third analysis asked to fold (the list was empty: the model failed) and truncated.
    notes = await _notes(world, world.instance_id)
    assert len(notes) == 2 and notes[1] == "Call 2: " + "x" * 90
    assert notes[0].startswith("…") and notes[0].endswith("x" * 20)
    assert len(notes[0]) == 125


async def test_an_outbound_calls_analysis_reaches_its_tasks_webhook(
    world: World, make_worker: WorkerFactory
) -> None:
    session_id = await world.finished_call()
    async with world.database.transaction() as db:
        agent = await get_agent(db, world.workspace_id, world.agent_id)
        spec = agent_spec(agent).model_copy(
            update={"webhook_url": HttpUrl("https://hooks.example/t")}
        )
        await replace_agent_spec(db, agent, spec)
        (task,) = await task_store.create_tasks(
            db,
            workspace_id=world.workspace_id,
            agent_id=world.agent_id,
            from_number="+18005550100",
            tasks=[task_store.NewTask(to_number="+14155550101", metadata={"order": "42"})],
            options=task_store.TaskOptions(),
        )
        # A task whose one attempt was this call, over: nothing left for a dispatcher to claim.
        attempt = task_store.new_attempt(task, owner="test", lease_until=utcnow())
        attempt.session_id = session_id
        attempt.status = AttemptStatus.COMPLETED.value
        attempt.lease_owner = attempt.lease_expires_at = None
        db.add(attempt)
        task.attempt_count = 1
        task.status = TaskStatus.COMPLETED.value
    await make_worker(ListedLlm([GOOD])).run_due()
    async with world.database.transaction() as db:
        rows = (
            await db.scalars(
                select(WebhookOutboxRow).where(
                    WebhookOutboxRow.subject_id == task.id,
                    WebhookOutboxRow.event_type == "task.attempt.analyzed",
                )
            )
        ).all()
    [row] = rows
    data = json.loads(row.body)["data"]
    assert data["task"]["id"] == task.id and data["task"]["metadata"] == {"order": "42"}
    assert data["attempt"]["sessionId"] == session_id
    assert data["analysis"]["data"] == {"booked": True}
