"""`task.attempt.ended`, `task.ended` and `task.attempt.analyzed` webhooks, queued in the
outbox of the transaction that ended the attempt or task (or recorded the analysis of the
attempt's conversation), for the agent's `webhookUrl` (none when it has none)."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from voxline.dispatch.views import attempt_view, task_view
from voxline.store import outbox, tasks
from voxline.store.agents import agent_spec
from voxline.store.models import AgentRow, TaskAttemptRow, TaskRow


async def attempt_ended(
    db: AsyncSession, task: TaskRow, attempt: TaskAttemptRow, attempts: list[TaskAttemptRow]
) -> None:
    data = {
        "task": task_view(task, attempts).model_dump(mode="json", by_alias=True),
        "attempt": attempt_view(attempt).model_dump(mode="json", by_alias=True),
    }
    await _queue(db, task, "task.attempt.ended", data)


async def attempt_analyzed(db: AsyncSession, session_id: str, analysis: dict[str, Any]) -> None:
    """The analysis of an outbound conversation is done: tell the task's webhook, with the
    task, the attempt whose conversation it was, and the analysis (none for other calls)."""
    attempt = await tasks.attempt_by_session(db, session_id)
    if attempt is None:
        return
    task = await tasks.get_task(db, attempt.task_id)
    attempts = (await tasks.attempts_of(db, [task.id]))[task.id]
    data = {
        "task": task_view(task, attempts).model_dump(mode="json", by_alias=True),
        "attempt": attempt_view(attempt).model_dump(mode="json", by_alias=True),
        "analysis": analysis,
    }
    await _queue(db, task, "task.attempt.analyzed", data)


async def task_ended(db: AsyncSession, task: TaskRow, attempts: list[TaskAttemptRow]) -> None:
    data = {"task": task_view(task, attempts).model_dump(mode="json", by_alias=True)}
    await _queue(db, task, "task.ended", data)


async def _queue(db: AsyncSession, task: TaskRow, event_type: str, data: dict[str, Any]) -> None:
    agent = await db.get(AgentRow, task.agent_id)
    if agent is None:
        return
    url = agent_spec(agent).webhook_url
    if url is None:
        return
    body = json.dumps(
        {"type": event_type, "createdAt": int(time.time()), "data": data}, separators=(",", ":")
    )
    await outbox.enqueue(
        db,
        workspace_id=task.workspace_id,
        url=str(url),
        event_type=event_type,
        subject_id=task.id,
        body=body,
    )
