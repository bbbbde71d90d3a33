"""Machine verdicts acting on live calls: here, through the REST API, or pending for the
process that holds the conversation."""

from __future__ import annotations

from datetime import timedelta

from tests.dispatch.fake_calls import FakeCalls
from voxline.calls.live import LiveCalls
from voxline.dispatch import machine
from voxline.runtime.phase import EndReason
from voxline.store import tasks as task_store
from voxline.store.database import Database
from voxline.store.models import AgentRow, TaskAttemptRow
from voxline.store.types import utcnow


class FakeLiveCall:
    def __init__(self, running: bool = True) -> None:
        self.running = running
        self.said: list[tuple[str, str]] = []
        self.hung_up: list[str] = []

    async def hang_up_now(self, reason: EndReason) -> bool:
        self.hung_up.append(reason)
        return self.running

    async def say_then_hang_up(self, text: str, reason: EndReason) -> bool:
        self.said.append((text, reason))
        return self.running

    async def transfer_now(self, number: str) -> None:
        raise AssertionError("machine verdicts never transfer")

    async def say_now(self, text: str) -> bool:
        raise AssertionError("machine verdicts never say a line without hanging up")


async def test_hang_up_goes_through_the_conversation_held_here() -> None:
    live, call = LiveCalls(), FakeLiveCall()
    live.add("sess_a", call)
    fake = FakeCalls()
    assert await machine.act(live, fake.client(), "hang_up", "sess_a", "CA" + "1" * 32, None)
    assert call.hung_up == ["machine_detected"] and fake.hangups == []


async def test_hang_up_without_the_conversation_uses_twilio() -> None:
    fake = FakeCalls()
    sid = fake.add_call("+15550001111", "+14155550100").sid
    assert await machine.act(LiveCalls(), fake.client(), "hang_up", None, sid, None)
    assert fake.hangups == [sid]


async def test_leave_message_elsewhere_stays_pending() -> None:
    assert not await machine.act(LiveCalls(), None, "leave_message", "sess_b", "CA1", "Hi")


async def test_pending_messages_are_left_by_the_process_holding_the_call(
    database: Database, agent: AgentRow
) -> None:
    async with database.transaction() as db:
        (task,) = await task_store.create_tasks(
            db,
            workspace_id=agent.workspace_id,
            agent_id=agent.id,
            from_number="+14155550100",
            tasks=[task_store.NewTask("+15550002222")],
            options=task_store.TaskOptions(
                machine_detection="leave_message", voicemail_message="Call us back."
            ),
        )
        attempt = task_store.new_attempt(task, owner="t", lease_until=utcnow() + timedelta(1))
        attempt.call_sid = "CA" + task.id[-26:].ljust(32, "0")
        attempt.session_id = f"sess_{task.id[5:]}"
        attempt.amd_pending = True
        db.add(attempt)
        task.attempt_count = 1
        task_store.set_task_status(task, task_store.TaskStatus.DIALING)
        task_store.set_task_status(task, task_store.TaskStatus.IN_PROGRESS)
    live, call = LiveCalls(), FakeLiveCall()
    live.add(attempt.session_id, call)
    await machine.apply_pending(database, live, None)
    assert call.said == [("Call us back.", "voicemail")]
    async with database.transaction() as db:
        stored = await db.get_one(TaskAttemptRow, (task.id, 1))
    assert stored.amd_pending is False
